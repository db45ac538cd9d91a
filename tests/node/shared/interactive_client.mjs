// What tests/node/ts_sdk1/client.mjs and tests/node/ts_sdk2/client.mjs share, whatever the SDK's
// version: the JSON-lines conversation with the Python test (one event a line on stdout, answers on
// stdin), an OAuthClientProvider that keeps everything in memory as an interactive client does, and
// what an application does around the SDK (on UnauthorizedError, let the user authorize, then retry).
// No SDK import here: a bare specifier would resolve from this folder, which has no node_modules, so
// each harness hands in its own SDK's classes.
import { createHash } from 'node:crypto';
import readline from 'node:readline';

export const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

// Tokens are never printed: a SHA-256 prefix of a refresh token lets the test follow rotation.
export const digest = (value) => (value ? createHash('sha256').update(value).digest('hex').slice(0, 16) : null);

const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

export async function nextMessage() {
  const { value, done } = await stdin.next();
  if (done) throw new Error('stdin closed before the test answered');
  return JSON.parse(value);
}

// In-memory storage; invalidateCredentials as mcp-remote does (it deletes the stored files of the
// named kind). Nothing here helps the SDK with step-up, refresh or rotation: it stores what the SDK
// hands it. options: clientMetadataUrl (CIMD), addClientAuthentication (private_key_jwt).
export class MemoryOAuthProvider {
  constructor(clientName, options = {}) {
    this.clientName = clientName;
    this.stored = {};
    this.pendingAuthorization = undefined;
    Object.assign(this, options);
  }

  get redirectUrl() {
    return 'http://127.0.0.1:9/callback'; // never contacted: the test reads the code from the redirect
  }

  get clientMetadata() {
    // no application_type, as TS SDK clients (the Inspector, IDE clients) register: 1.x sends none,
    // 2.x derives it (SEP-837) from the loopback redirect
    return {
      client_name: this.clientName,
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

// One MCP session as an application holds it. sdk: { UnauthorizedError, newTransport(), newClient(),
// finishAuth(transport, answer) } where answer is the test's reply to the {"event": "authorize"} line.
export class InteractiveSession {
  constructor(provider, sdk) {
    this.provider = provider;
    this.sdk = sdk;
  }

  async connect() {
    for (let attempt = 0; attempt < 2; attempt += 1) {
      this.transport = this.sdk.newTransport();
      this.client = this.sdk.newClient();
      try {
        await this.client.connect(this.transport);
        return;
      } catch (error) {
        if (!(error instanceof this.sdk.UnauthorizedError) || attempt > 0) throw error;
        await this.authorize();
      }
    }
  }

  async authorize() {
    if (!this.provider.pendingAuthorization) throw new Error('UnauthorizedError without an authorization URL');
    emit({ event: 'authorize', url: this.provider.pendingAuthorization });
    this.provider.pendingAuthorization = undefined;
    await this.sdk.finishAuth(this.transport, await nextMessage());
  }

  async callTool(name, args) {
    try {
      return await this.client.callTool({ name, arguments: args });
    } catch (error) {
      if (!(error instanceof this.sdk.UnauthorizedError)) throw error;
      emit({ event: 'unauthorized', tool: name });
      await this.authorize();
      return await this.client.callTool({ name, arguments: args });
    }
  }

  // calls the tool and prints {"event": step, "isError", "structured"}
  async report(step, name, args) {
    const result = await this.callTool(name, args);
    emit({ event: step, isError: Boolean(result.isError), structured: result.structuredContent ?? null });
  }
}

// Runs the harness's steps; exits 0, or prints {"event": "error"} and exits 1.
export async function run(steps) {
  try {
    await steps();
    process.exit(0);
  } catch (error) {
    emit({ event: 'error', name: error?.name ?? null, message: String(error?.message ?? error) });
    process.exit(1);
  }
}
