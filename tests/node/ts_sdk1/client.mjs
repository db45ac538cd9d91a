// Drives @modelcontextprotocol/sdk 1.x (Client + StreamableHTTPClientTransport + an OAuthClientProvider)
// against the platform, for tests/test_ts_sdk1.py. One JSON object per line on stdout reports each
// step; when the SDK sends the user to the authorization page, the URL is printed
// ({"event": "authorize"}) and the authorization code is read back from stdin ({"code": "..."}):
// the Python test signs in and consents through the platform's real pages over HTTP.
//
// usage: node client.mjs <mcp url> <contact id>
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { InteractiveSession, MemoryOAuthProvider, emit, run } from '../shared/interactive_client.mjs';

const [serverArg, contactArg] = process.argv.slice(2);
const serverUrl = new URL(serverArg);
const contactId = Number(contactArg);

const provider = new MemoryOAuthProvider('TS SDK 1.x test client');
const session = new InteractiveSession(provider, {
  UnauthorizedError,
  newTransport: () => new StreamableHTTPClientTransport(serverUrl, { authProvider: provider }),
  newClient: () => new Client({ name: 'ts-sdk1-test', version: '1.0.0' }),
  finishAuth: (transport, { code }) => transport.finishAuth(code),
});

await run(async () => {
  await session.connect();
  emit({ event: 'connected' });
  await session.report('read', 'crm_search_contacts', { query: 'Grace' });
  await session.report('write', 'crm_create_note', { contact_id: contactId, body: 'written by TS SDK 1.x' });
  await session.report('read_again', 'crm_search_contacts', { query: 'Grace' });
  emit({ event: 'done', scope: provider.tokens()?.scope ?? null });
  await session.client.close();
});
