// A tenant's enterprise identity provider for the enterprise-identity tests (npm oidc-provider), the
// platform being its relying party (sign-in) and its back-channel logout receiver.
//
// Started by tests/identity/conftest.py on a free loopback port; prints one JSON line
// {"issuer": ..., "port": ...} on stdout when it listens. Configuration from the environment:
//   CLIENTS   JSON list of clients (client_id, client_secret, redirect_uris, backchannel_logout_uri)
//
// Strict like a real IdP: PKCE (S256) required, RFC 9207 `iss` on authorization responses, ID tokens
// signed RS256 with `sid` (back-channel logout with sessions), RP-initiated logout.
//
// Headless login and consent: GET /interaction/<uid> signs in the account named by the cookie
// `test_account` (default "alice") and consents at once. Accounts' claims are set by the test:
//   POST /_test/accounts  {"<id>": {claims...}}   claims beside sub (email, email_verified, name,
//                         groups, role, tid, hd...); an account without an entry gets
//                         {email: <id>@idp.example, email_verified: true}
//   POST /_test/logout_token?client_id=C&sub=S&sid=X&send=1   a back-channel logout token as the
//                         provider signs it for client C ({"logout_token": ...}); with send=1 it is
//                         also POSTed to the client's backchannel_logout_uri and the answer's status
//                         returned ({"status": ...})
//   GET  /_test/sessions  {"<accountId>": "<sid for the last client>"} of the live provider sessions
import http from 'node:http';
import { randomUUID } from 'node:crypto';

import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.CLIENTS || '[]');
const accounts = {};
const sids = {};

function cookie(ctx, name) {
  const raw = ctx.get('cookie') || '';
  for (const part of raw.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

function claimsOf(id) {
  return { email: `${id}@idp.example`, email_verified: true, ...(accounts[id] || {}), sub: id };
}

const configuration = {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
    backchannel_logout_uri: c.backchannel_logout_uri,
    backchannel_logout_session_required: Boolean(c.backchannel_logout_uri),
  })),
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups', 'role', 'tid', 'hd'],
  },
  conformIdTokenClaims: false, // the claims of the granted scopes go into the ID token itself
  scopes: ['openid', 'email', 'profile'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['test-only-idp-cookie-key'] },
  ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
};

async function finishInteraction(provider, ctx) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (details.prompt.name === 'login') {
    result = { login: { accountId: cookie(ctx, 'test_account') || 'alice' } };
  } else {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(String(details.params.scope || 'openid'));
    const claims = details.prompt.details.missingOIDCClaims;
    if (claims) grant.addOIDCClaims(claims);
    result = { consent: { grantId: await grant.save() } };
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(returnTo);
}

async function readJson(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString() || '{}');
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration);

  provider.on('authorization.success', (ctx) => {
    const session = ctx.oidc.session;
    const client = ctx.oidc.client;
    if (session?.accountId && client) sids[session.accountId] = session.sidFor(client.clientId);
  });

  provider.use(async (ctx, next) => {
    if (ctx.path === '/_test/accounts' && ctx.method === 'POST') {
      Object.assign(accounts, await readJson(ctx));
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/_test/sessions' && ctx.method === 'GET') {
      ctx.body = sids;
      return;
    }
    if (ctx.path === '/_test/logout_token' && ctx.method === 'POST') {
      const client = await provider.Client.find(String(ctx.query.client_id));
      const token = new provider.IdToken({ sub: String(ctx.query.sub) }, { client, ctx: undefined });
      token.mask = { sub: null };
      token.set('events', { 'http://schemas.openid.net/event/backchannel-logout': {} });
      token.set('jti', randomUUID());
      if (ctx.query.sid) token.set('sid', String(ctx.query.sid));
      const logoutToken = await token.issue({ use: 'logout' });
      if (ctx.query.send === '1') {
        const response = await fetch(client.backchannelLogoutUri, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ logout_token: logoutToken }),
          redirect: 'manual',
        });
        ctx.body = { logout_token: logoutToken, status: response.status };
        return;
      }
      ctx.body = { logout_token: logoutToken };
      return;
    }
    if (ctx.path.startsWith('/interaction/') && ctx.method === 'GET') {
      await finishInteraction(provider, ctx);
      return;
    }
    await next();
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
