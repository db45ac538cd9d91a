// Drives @modelcontextprotocol/sdk 1.x (Client + StreamableHTTPClientTransport + an OAuthClientProvider)
// against the platform, for tests/test_ts_sdk1.py. One JSON object per line on stdout reports each
// step; when the SDK sends the user to the authorization page, the URL is printed
// ({"event": "authorize"}) and the authorization code is read back from stdin ({"code": "..."}):
// the Python test signs in and consents through the platform's real pages over HTTP.
//
// usage: node client.mjs <mcp url> <contact id>
import readline from 'node:readline';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [serverArg, contactArg] = process.argv.slice(2);
const serverUrl = new URL(serverArg);
const contactId = Number(contactArg);

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function nextMessage() {
  const { value, done } = await stdin.next();
  if (done) throw new Error('stdin closed before the authorization code arrived');
  return JSON.parse(value);
}

// In-memory storage, as an interactive client keeps it; invalidateCredentials as mcp-remote does
// (it deletes the stored files of the named kind).
class MemoryOAuthProvider {
  constructor() {
    this.stored = {};
    this.pendingAuthorization = undefined;
  }

  get redirectUrl() {
    return 'http://127.0.0.1:9/callback'; // never contacted: the test reads the code from the redirect
  }

  get clientMetadata() {
    // what TS SDK 1.x clients (the Inspector, IDE clients) register: no application_type
    return {
      client_name: 'TS SDK 1.x test client',
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
    emit({ event: 'registered', client_id: info.client_id, application_type: info.application_type ?? null });
  }

  tokens() {
    return this.stored.tokens;
  }

  saveTokens(tokens) {
    this.stored.tokens = tokens;
    emit({ event: 'tokens', scope: tokens.scope ?? null });
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
    switch (scope) {
      case 'all':
        delete this.stored.client;
        delete this.stored.tokens;
        delete this.stored.verifier;
        break;
      case 'client':
        delete this.stored.client;
        break;
      case 'tokens':
        delete this.stored.tokens;
        break;
      case 'verifier':
        delete this.stored.verifier;
        break;
      default:
        throw new Error(`unknown credential scope: ${scope}`);
    }
  }
}

const provider = new MemoryOAuthProvider();

async function authorizeInteractively(transport) {
  if (!provider.pendingAuthorization) throw new Error('UnauthorizedError without an authorization URL');
  emit({ event: 'authorize', url: provider.pendingAuthorization });
  provider.pendingAuthorization = undefined;
  const { code } = await nextMessage();
  await transport.finishAuth(code);
}

async function connect() {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
    const client = new Client({ name: 'ts-sdk1-test', version: '1.0.0' });
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
  emit({ event: 'connected' });
  report('read', await callTool(session, 'crm_search_contacts', { query: 'Grace' }));
  report('write', await callTool(session, 'crm_create_note', { contact_id: contactId, body: 'written by TS SDK 1.x' }));
  report('read_again', await callTool(session, 'crm_search_contacts', { query: 'Grace' }));
  emit({ event: 'done', scope: provider.tokens()?.scope ?? null });
  await session.client.close();
  process.exit(0);
} catch (error) {
  emit({ event: 'error', name: error?.name ?? null, message: String(error?.message ?? error) });
  process.exit(1);
}
