// A tenant's enterprise identity provider for the enterprise-identity tests (npm oidc-provider), the
// platform being its relying party (sign-in) and its back-channel logout receiver, and the issuer of
// ID-JAGs for enterprise-managed authorization (tests/identity/test_id_jag.py).
//
// Started by tests/identity/conftest.py on a free loopback port; prints one JSON line
// {"issuer": ..., "port": ...} on stdout when it listens. Configuration from the environment:
//   CLIENTS   JSON list of clients (client_id, client_secret, redirect_uris, backchannel_logout_uri,
//             optional grant_types and token_endpoint_auth_method)
//
// Strict like a real IdP: PKCE (S256) required, RFC 9207 `iss` on authorization responses, ID tokens
// signed RS256 with `sid` (back-channel logout with sessions), RP-initiated logout.
//
// ID-JAGs (draft-ietf-oauth-identity-assertion-authz-grant): oidc-provider has no RFC 8693 token
// exchange, so this file registers one (`provider.registerGrantType`) for clients whose grant_types
// list it. It checks the client (oidc-provider's own client authentication), validates the
// subject_token as an ID token this provider issued to that client (oidc-provider's IdToken.validate;
// expiry checked here), looks up what IT registered for that client and audience (the "managed access"
// below: the client's client_id at that authorization server, the resources, the scopes it may have),
// and answers {issued_token_type: ...:id-jag, access_token: <ID-JAG>, token_type: N_A, scope,
// expires_in: 300}. The ID-JAG (typ oauth-id-jag+jwt) is signed RS256 with the provider's own signing
// key: the key is made here at start and handed to oidc-provider as its JWKS, so the jwks_uri of the
// discovery document serves it, as at Okta. Its claims: iss, sub (the same public sub the ID token
// has), aud (the audience), client_id, jti, iat, exp, resource, scope, and the account's claims
// (email, email_verified, ...).
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
//   POST /_test/managed   {"<client id here>": {"<audience>": {"client_id": "<client id there>",
//                         "resources": [...], "scope": "a b c"}}}: IT's registration of which
//                         authorization server (audience = its issuer) a client may get ID-JAGs for
//   POST /_test/sign      {"header": {...}, "claims": {...}} -> {"jwt": ...}: any JWT signed with the
//                         provider's key (RS256, its kid), for the tests of what the platform must refuse
import http from 'node:http';
import { generateKeyPairSync, randomUUID, sign as rsaSign } from 'node:crypto';

import Provider from 'oidc-provider';

import { answerInteraction, consented, cookie } from './interaction.mjs';

const clients = JSON.parse(process.env.CLIENTS || '[]');
const accounts = {};
const sids = {};
const managed = {};

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ID_JAG = 'urn:ietf:params:oauth:token-type:id-jag';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const ID_JAG_SECONDS = 300;

// the provider's signing key: ID tokens (oidc-provider) and ID-JAGs (signJwt) alike
const KID = `idp-${randomUUID().slice(0, 8)}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' };

const b64url = (value) => Buffer.from(value).toString('base64url');
const epoch = () => Math.floor(Date.now() / 1000);

function signJwt(header, claims) {
  const input = `${b64url(JSON.stringify({ alg: 'RS256', kid: KID, ...header }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${rsaSign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

function claimsOf(id) {
  return { email: `${id}@idp.example`, email_verified: true, ...(accounts[id] || {}), sub: id };
}

const configuration = {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: c.grant_types || ['authorization_code'],
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
  jwks: { keys: [signingJwk] },
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
    result = await consented(grant, details);
  }
  await answerInteraction(provider, ctx, result);
}

// RFC 8693 token exchange: an ID token of this provider for an ID-JAG (see the top of this file)
async function exchangeForIdJag(provider, ctx) {
  const { client, params } = ctx.oidc;
  const refuse = (error, description) => {
    ctx.status = 400;
    ctx.body = { error, error_description: description };
  };
  if (params.requested_token_type !== ID_JAG) return refuse('invalid_request', `requested_token_type must be ${ID_JAG}`);
  if (params.subject_token_type !== ID_TOKEN) return refuse('invalid_request', `subject_token_type must be ${ID_TOKEN}`);
  let idToken;
  try {
    idToken = (await provider.IdToken.validate(String(params.subject_token || ''), client)).payload;
  } catch {
    return refuse('invalid_grant', 'subject_token is not an ID token this provider issued to this client');
  }
  if (idToken.exp <= epoch()) return refuse('invalid_grant', 'subject_token has expired');
  const access = managed[client.clientId]?.[params.audience];
  if (!access) return refuse('invalid_target', 'this client has no managed access to that audience');
  const resource = params.resource || access.resources[0];
  if (!access.resources.includes(resource)) return refuse('invalid_target', 'resource is not managed for this client');
  const allowed = String(access.scope || '').split(' ').filter(Boolean);
  const requested = params.scope ? String(params.scope).split(' ') : allowed;
  const scope = requested.filter((s) => allowed.includes(s)).join(' ');
  if (!scope) return refuse('invalid_scope', 'none of the requested scopes is managed for this client');
  const now = epoch();
  const { sub, ...accountClaims } = claimsOf(idToken.sub);
  const claims = {
    ...accountClaims,
    iss: provider.issuer,
    sub,
    aud: params.audience,
    client_id: access.client_id,
    jti: randomUUID(),
    iat: now,
    exp: now + ID_JAG_SECONDS,
    resource,
    scope,
  };
  ctx.body = {
    issued_token_type: ID_JAG,
    access_token: signJwt({ typ: 'oauth-id-jag+jwt' }, claims),
    token_type: 'N_A',
    scope,
    expires_in: ID_JAG_SECONDS,
  };
  return undefined;
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
  provider.registerGrantType(TOKEN_EXCHANGE, (ctx) => exchangeForIdJag(provider, ctx), [
    'audience', 'resource', 'scope', 'subject_token', 'subject_token_type', 'requested_token_type',
  ]);

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
    if (ctx.path === '/_test/managed' && ctx.method === 'POST') {
      for (const [clientId, audiences] of Object.entries(await readJson(ctx))) {
        managed[clientId] = { ...(managed[clientId] || {}), ...audiences };
      }
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/_test/sign' && ctx.method === 'POST') {
      const { header, claims } = await readJson(ctx);
      ctx.body = { jwt: signJwt(header || {}, claims || {}) };
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
