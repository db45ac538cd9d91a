// Drives @modelcontextprotocol/client 2.x (Client + StreamableHTTPClientTransport + an OAuthClientProvider)
// against the platform, for tests/test_ts_sdk2.py. One JSON object per line on stdout reports each step;
// when the SDK sends the user to the authorization page, the URL is printed ({"event": "authorize"}) and
// the redirect's query string is read back from stdin ({"query": "code=...&iss=..."}); when it prints
// {"event": "paused"} it waits for {"continue": true} (the test expires the access token meanwhile).
// Tokens are never printed: only a SHA-256 prefix of each refresh token, so the test can follow rotation.
//
// usage: node client.mjs <mcp url> <contact id> dcr
//        node client.mjs <mcp url> <contact id> cimd <client metadata url> [<PKCS#8 PEM file> <alg>]
import { readFileSync } from 'node:fs';

import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  createPrivateKeyJwtAuth,
} from '@modelcontextprotocol/client';

import {
  InteractiveSession,
  MemoryOAuthProvider,
  digest,
  emit,
  nextMessage,
  run,
} from '../shared/interactive_client.mjs';

const [serverArg, contactArg, mode, metadataUrl, keyFile, keyAlg] = process.argv.slice(2);
const serverUrl = new URL(serverArg);
const contactId = Number(contactArg);

// 2.x also keeps the discovery state it is handed
class DiscoveringProvider extends MemoryOAuthProvider {
  discoveryState() {
    return this.stored.discovery;
  }

  saveDiscoveryState(state) {
    this.stored.discovery = state;
  }
}

function cimdOptions() {
  if (mode !== 'cimd') return {};
  if (!keyFile) return { clientMetadataUrl: metadataUrl };
  const privateKey = readFileSync(keyFile, 'utf8');
  const auth = createPrivateKeyJwtAuth({ issuer: metadataUrl, subject: metadataUrl, privateKey, alg: keyAlg });
  return { clientMetadataUrl: metadataUrl, addClientAuthentication: auth };
}

const provider = new DiscoveringProvider('TS SDK 2.x test client', cimdOptions());
const session = new InteractiveSession(provider, {
  UnauthorizedError,
  newTransport: () => new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }),
  // 'auto': probe 2026-07-28 (server/discover) first, fall back to the initialize handshake
  newClient: () => new Client({ name: 'ts-sdk2-test', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } }),
  finishAuth: (transport, { query }) => transport.finishAuth(new URLSearchParams(query)),
});

await run(async () => {
  await session.connect();
  emit({ event: 'connected', protocolVersion: session.client.getNegotiatedProtocolVersion() ?? null });
  await session.report('read', 'crm_search_contacts', { query: 'Grace' });
  await session.report('write', 'crm_create_note', { contact_id: contactId, body: 'written by TS SDK 2.x' });
  emit({ event: 'paused' });
  await nextMessage(); // the test expired the access token: the next call refreshes
  await session.report('read_after_refresh', 'crm_search_contacts', { query: 'Grace' });
  emit({ event: 'done', scope: provider.tokens()?.scope ?? null, refresh: digest(provider.tokens()?.refresh_token) });
  await session.client.close();
});
