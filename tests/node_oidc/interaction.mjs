// What the two test servers (server.mjs, idp.mjs) share: reading a test cookie, consenting, and
// answering an interaction (login or consent) without any page.

export function cookie(ctx, name) {
  const raw = ctx.get('cookie') || '';
  for (const part of raw.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

// the consent result for this grant, with the claims the prompt found missing
export async function consented(grant, details) {
  const claims = details.prompt.details.missingOIDCClaims;
  if (claims) grant.addOIDCClaims(claims);
  return { consent: { grantId: await grant.save() } };
}

export async function answerInteraction(provider, ctx, result) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
}
