// Drives @modelcontextprotocol/client 2.x (Client + StreamableHTTPClientTransport + an OAuthClientProvider)
// against the platform, for tests/test_ts_sdk2.py. One JSON object per line on stdout reports each step;
// when the SDK sends the user to the authorization page, the URL is printed ({"event": "authorize"}) and
// the redirect's query string is read back from stdin ({"query": "code=...&iss=..."}); when it prints
// {"event": "paused"} it waits for {"continue": true} (the test expires the access token meanwhile).
// Tokens are never printed: only a SHA-256 prefix of each refresh token, so the test can follow rotation.
//
// usage: node client.mjs <mcp url> <contact id> dcr
//        node client.mjs <mcp url> <contact id> cimd <client metadata url> [<PKCS#8 PEM file> <alg>]
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import readline from 'node:readline';

import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  createPrivateKeyJwtAuth,
} from '@modelcontextprotocol/client';

const [serverArg, contactArg, mode, metadataUrl, keyFile, keyAlg] = process.argv.slice(2);
const serverUrl = new URL(serverArg);
const contactId = Number(contactArg);

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const digest = (value) => (value ? createHash('sha256').update(value).digest('hex').slice(0, 16) : null);

async function nextMessage() {
  const { value, done } = await stdin.next();
  if (done) throw new Error('stdin closed before the test answered');
  return JSON.parse(value);
}

// In-memory storage, as an interactive client keeps it. Nothing here helps the SDK with step-up,
// refresh or rotation: it stores what the SDK hands it.
class MemoryOAuthProvider {
  constructor() {
    this.stored = {};
    this.pendingAuthorization = undefined;
    if (mode === 'cimd') {
      this.clientMetadataUrl = metadataUrl;
      if (keyFile) {
        this.addClientAuthentication = createPrivateKeyJwtAuth({
          issuer: metadataUrl,
          subject: metadataUrl,
          privateKey: readFileSync(keyFile, 'utf8'),
          alg: keyAlg,
        });
      }
    }
  }

  get redirectUrl() {
    return 'http://127.0.0.1:9/callback'; // never contacted: the test reads the code from the redirect
  }

  get clientMetadata() {
    // no application_type: the SDK derives it (SEP-837) from the loopback redirect
    return {
      client_name: 'TS SDK 2.x test client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.stored.client;
  }

  saveClientInformation(info) {
    this.stored.client = info;
    emit({ event: 'client', client_id: info.client_id, application_type: info.application_type ?? null });
  }

  tokens() {
    return this.stored.tokens;
  }

  saveTokens(tokens) {
    this.stored.tokens = tokens;
    emit({ event: 'tokens', scope: tokens.scope ?? null, refresh: digest(tokens.refresh_token) });
  }

  discoveryState() {
    return this.stored.discovery;
  }

  saveDiscoveryState(state) {
    this.stored.discovery = state;
  }

  redirectToAuthorization(url) {
    this.pendingAuthorization = url.toString();
  }

  saveCodeVerifier(verifier) {
    this.stored.verifier = verifier;
  }

  codeVerifier() {
    if (!this.stored.verifier) throw new Error('no code verifier saved');
    return this.stored.verifier;
  }

  invalidateCredentials(scope) {
    emit({ event: 'invalidate', scope });
    if (scope === 'all' || scope === 'client') delete this.stored.client;
    if (scope === 'all' || scope === 'tokens') delete this.stored.tokens;
    if (scope === 'all' || scope === 'verifier') delete this.stored.verifier;
  }
}

const provider = new MemoryOAuthProvider();

async function authorizeInteractively(transport) {
  if (!provider.pendingAuthorization) throw new Error('UnauthorizedError without an authorization URL');
  emit({ event: 'authorize', url: provider.pendingAuthorization });
  provider.pendingAuthorization = undefined;
  const { query } = await nextMessage();
  await transport.finishAuth(new URLSearchParams(query));
}

async function connect() {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
    // 'auto': probe 2026-07-28 (server/discover) first, fall back to the initialize handshake
    const client = new Client({ name: 'ts-sdk2-test', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || attempt > 0) throw error;
      await authorizeInteractively(transport);
    }
  }
  throw new Error('unreachable');
}

// What an application does with the SDK: on UnauthorizedError, let the user authorize, then retry.
async function callTool(session, name, args) {
  try {
    return await session.client.callTool({ name, arguments: args });
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    emit({ event: 'unauthorized', tool: name });
    await authorizeInteractively(session.transport);
    return await session.client.callTool({ name, arguments: args });
  }
}

function report(step, result) {
  emit({ event: step, isError: Boolean(result.isError), structured: result.structuredContent ?? null });
}

try {
  const session = await connect();
  emit({ event: 'connected', protocolVersion: session.client.getNegotiatedProtocolVersion() ?? null });
  report('read', await callTool(session, 'crm_search_contacts', { query: 'Grace' }));
  report('write', await callTool(session, 'crm_create_note', { contact_id: contactId, body: 'written by TS SDK 2.x' }));
  emit({ event: 'paused' });
  await nextMessage(); // the test expired the access token: the next call refreshes
  report('read_after_refresh', await callTool(session, 'crm_search_contacts', { query: 'Grace' }));
  emit({ event: 'done', scope: provider.tokens()?.scope ?? null, refresh: digest(provider.tokens()?.refresh_token) });
  await session.client.close();
  process.exit(0);
} catch (error) {
  emit({ event: 'error', name: error?.name ?? null, message: String(error?.message ?? error) });
  process.exit(1);
}
