// A strict third-party OAuth 2.0 / OpenID provider for the connectors tests (npm oidc-provider).
//
// Started by tests/conftest_oidc.py on a free loopback port; prints one JSON line
// {"issuer": ..., "port": ...} on stdout when it listens. Configuration comes from the environment:
//   CLIENTS       JSON list of registered clients (client_id, client_secret, redirect_uris, auth method,
//                 optional access_ttl: that client's access token lifetime in seconds)
//   ACCESS_TTL    access token lifetime in seconds for the other clients (default 3600)
//
// Strictness: PKCE (S256) required for every client, refresh tokens rotate on every use (a reused
// refresh token is refused and revokes the grant), RFC 7009 revocation and RFC 7662 introspection on.
//
// Headless login and consent (no HTML to scrape): GET /interaction/<uid> finishes the interaction at
// once. Cookies the test sets on this host steer it: `test_account` (the account id, default
// "alice"), `test_deny=1` (the user denies: access_denied), `test_grant_scopes` (grant only these
// space-separated scopes: narrower consent).
//
// Test-only routes (not part of any OAuth surface):
//   GET  /_test/stats          {"grants": {"refresh_token": n, ...}, "revocations": n, "token_requests": n,
//        "clients": {client_id: {"refreshes": n, "token_requests": n, "failures_injected": n}},
//        "accounts": {account_id: refreshes}}   (clients: from the HTTP Basic credentials)
//   POST /_test/fail?count=N&status=503&retry_after=1[&path=/token/revocation][&client_id=C]   the
//        next N POSTs to the token endpoint (or path), of client C only if given, fail with that status
//   POST /_test/delay?count=N&ms=3000   the next N token answers are held back after processing
//   POST /_test/release        answers held back by /_test/delay go out now
//   POST /_test/mint?client_id=C&count=N&prefix=P   N refresh tokens of accounts P-0..P-(N-1), as a
//        completed authorization would have issued them (bulk set-up for the lifecycle-job tests)
//   POST /_test/revocation?token_only=1   RFC 7009 at its minimum: revoking a token revokes that token
//        only (oidc-provider itself revokes every token of the grant); token_only=0 restores that
//   GET  /_test/issued         every token answer so far: [{grant_type, access_token, refresh_token}]
//   POST /_test/tamper_id_token?claims={json}[&foreign_key=1]   the next token answer's ID token gets
//        these claims (null removes one), re-signed with the provider's key (or a key not in its JWKS)
import crypto from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

import { answerInteraction, consented, cookie } from './interaction.mjs';

const clients = JSON.parse(process.env.CLIENTS || '[]');
const accessTtl = Number(process.env.ACCESS_TTL || 3600);

const ttlByClient = Object.fromEntries(clients.filter((c) => c.access_ttl).map((c) => [c.client_id, Number(c.access_ttl)]));

const stats = { grants: {}, revocations: 0, token_failures_injected: 0, token_requests: 0, clients: {}, accounts: {} };
const failNext = { count: 0, status: 503, retryAfter: null, path: '/token', clientId: null };

function clientStats(clientId) {
  if (!stats.clients[clientId]) stats.clients[clientId] = { refreshes: 0, token_requests: 0, failures_injected: 0 };
  return stats.clients[clientId];
}

function basicClientId(ctx) {
  const raw = ctx.get('authorization') || '';
  if (!raw.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(raw.slice(6), 'base64').toString();
  return decodeURIComponent(decoded.split(':')[0]);
}
const delayNext = { count: 0, ms: 0 };
const heldAnswers = [];  // resolvers of the answers /_test/delay is holding back
const revocation = { tokenOnly: false };
const issued = [];
const tamper = { claims: null, foreignKey: false };

// the provider's own signing key (so the tamper route can re-sign ID tokens) and one it does not publish
function rsaKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}
const signingKey = rsaKey('test-signing-key');
const foreignKey = rsaKey('test-signing-key');  // same kid, another key: only the signature tells them apart

function b64url(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function resign(idToken, overrides, key) {
  const [, payload] = idToken.split('.');
  const claims = { ...JSON.parse(Buffer.from(payload, 'base64url').toString()) };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === null) delete claims[name]; else claims[name] = value;
  }
  const input = `${b64url({ alg: 'RS256', typ: 'JWT', kid: key.kid })}.${b64url(claims)}`;
  return `${input}.${crypto.sign('RSA-SHA256', Buffer.from(input), key.privateKey).toString('base64url')}`;
}

async function formBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

const configuration = {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
  })),
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@oidc.example`, email_verified: true, name: `Test user ${id}` };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ['test-only-cookie-signing-key'] },
  jwks: { keys: [signingKey.jwk] },
  ttl: {
    AccessToken: (ctx, token, client) => ttlByClient[client?.clientId] || accessTtl,
    AuthorizationCode: 60,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Interaction: 600,
    Session: 3600,
    IdToken: 3600,
  },
};

async function finishInteraction(provider, ctx) {
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  let result;
  if (cookie(ctx, 'test_deny') === '1') {
    result = { error: 'access_denied', error_description: 'the user denied the request' };
  } else if (details.prompt.name === 'login') {
    result = { login: { accountId: cookie(ctx, 'test_account') || 'alice' } };
  } else {
    // the session's grant, unless it was revoked meanwhile (a revoked refresh token takes its grant along)
    const grant = (details.grantId && await provider.Grant.find(details.grantId))
      || new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const requested = String(details.params.scope || '').split(' ').filter(Boolean);
    const only = cookie(ctx, 'test_grant_scopes');
    const granted = only ? requested.filter((s) => only.split(' ').includes(s)) : requested;
    grant.addOIDCScope(granted.join(' '));
    const rejected = requested.filter((s) => !granted.includes(s));
    if (rejected.length) grant.rejectOIDCScope(rejected.join(' '));
    result = await consented(grant, details);
  }
  await answerInteraction(provider, ctx, result);
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, configuration);

  provider.on('grant.success', (ctx) => {
    const type = ctx.oidc.params.grant_type;
    stats.grants[type] = (stats.grants[type] || 0) + 1;
    if (type === 'refresh_token') {
      clientStats(ctx.oidc.client.clientId).refreshes += 1;
      const accountId = ctx.oidc.entities.Account?.accountId;
      if (accountId) stats.accounts[accountId] = (stats.accounts[accountId] || 0) + 1;
    }
  });

  provider.use(async (ctx, next) => {
    if (ctx.path === '/_test/stats' && ctx.method === 'GET') {
      ctx.body = stats;
      return;
    }
    if (ctx.path === '/_test/fail' && ctx.method === 'POST') {
      failNext.count = Number(ctx.query.count || 1);
      failNext.status = Number(ctx.query.status || 503);
      failNext.retryAfter = ctx.query.retry_after ?? null;
      failNext.path = ctx.query.path || '/token';
      failNext.clientId = ctx.query.client_id || null;
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/_test/delay' && ctx.method === 'POST') {
      delayNext.count = Number(ctx.query.count || 1);
      delayNext.ms = Number(ctx.query.ms || 1000);
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/_test/release' && ctx.method === 'POST') {
      heldAnswers.splice(0).forEach((release) => release());
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/_test/revocation' && ctx.method === 'POST') {
      revocation.tokenOnly = ctx.query.token_only === '1';
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/_test/issued' && ctx.method === 'GET') {
      ctx.body = issued;
      return;
    }
    if (ctx.path === '/_test/tamper_id_token' && ctx.method === 'POST') {
      tamper.claims = JSON.parse(String(ctx.query.claims || '{}'));
      tamper.foreignKey = ctx.query.foreign_key === '1';
      ctx.status = 204;
      return;
    }
    if (ctx.path === '/token/revocation' && ctx.method === 'POST' && revocation.tokenOnly) {
      const value = (await formBody(ctx.req)).get('token');
      const token = value && ((await provider.RefreshToken.find(value)) || (await provider.AccessToken.find(value)));
      if (token) await token.destroy();
      stats.revocations += 1;
      ctx.status = 200;
      ctx.body = '';
      return;
    }
    if (ctx.path === '/_test/mint' && ctx.method === 'POST') {
      const client = await provider.Client.find(String(ctx.query.client_id));
      const scope = 'openid offline_access email profile';
      const minted = [];
      for (let i = 0; i < Number(ctx.query.count || 1); i += 1) {
        const accountId = `${ctx.query.prefix || 'bulk'}-${i}`;
        const grant = new provider.Grant({ accountId, clientId: client.clientId });
        grant.addOIDCScope(scope);
        const grantId = await grant.save();
        const token = new provider.RefreshToken({
          accountId, client, grantId, scope, gty: 'authorization_code', iiat: Math.floor(Date.now() / 1000), rotations: 0,
        });
        minted.push({ account: accountId, refresh_token: await token.save() });
      }
      ctx.body = minted;
      return;
    }
    if (ctx.path.startsWith('/interaction/') && ctx.method === 'GET') {
      await finishInteraction(provider, ctx);
      return;
    }
    const clientId = ctx.method === 'POST' ? basicClientId(ctx) : undefined;
    if (ctx.path === '/token' && ctx.method === 'POST') {
      stats.token_requests += 1;
      if (clientId) clientStats(clientId).token_requests += 1;
    }
    const delayed = ctx.path === '/token' && ctx.method === 'POST' && delayNext.count > 0;
    if (delayed) delayNext.count -= 1;
    const failing = failNext.count > 0 && (!failNext.clientId || failNext.clientId === clientId);
    if (ctx.path === failNext.path && ctx.method === 'POST' && failing) {
      failNext.count -= 1;
      stats.token_failures_injected += 1;
      if (clientId) clientStats(clientId).failures_injected += 1;
      ctx.status = failNext.status;
      if (failNext.retryAfter !== null) ctx.set('Retry-After', String(failNext.retryAfter));
      ctx.body = { error: 'temporarily_unavailable' };
      return;
    }
    await next();
    if (ctx.path === '/token/revocation' && ctx.status === 200) stats.revocations += 1;
    if (ctx.path === '/token' && ctx.method === 'POST' && ctx.status === 200 && ctx.body) {
      if (tamper.claims && ctx.body.id_token) {
        ctx.body.id_token = resign(ctx.body.id_token, tamper.claims, tamper.foreignKey ? foreignKey : signingKey);
        tamper.claims = null;
      }
      const { access_token: accessToken, refresh_token: refreshToken } = ctx.body;
      issued.push({ grant_type: ctx.oidc?.params?.grant_type, access_token: accessToken, refresh_token: refreshToken });
      if (issued.length > 500) issued.shift();
    }
    if (delayed) {
      // processed (a refresh token already rotated), the answer held back: a client killed now loses it
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delayNext.ms);
        heldAnswers.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
