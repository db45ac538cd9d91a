// Enterprise-managed authorization with @modelcontextprotocol/client 2.x, for tests/identity/test_id_jag.py:
// CrossAppAccessProvider against the platform, with no browser. The test hands over, as JSON on stdin,
// what an enterprise app holds at that point: the ID token of its user's sign-in at the enterprise IdP,
// its client at the IdP, and its client at the MCP server's authorization server (registered there by
// the tenant admin). The SDK then does the rest by itself:
//   - the 401, RFC 9728 resource metadata and RFC 8414 discovery of the tenant's authorization server;
//   - the assertion callback: the RFC 8693 token exchange at the IdP (the SDK's own
//     discoverAndRequestJwtAuthGrant: audience = the authorization server, resource = the MCP server);
//   - the JWT bearer grant with the ID-JAG (client_secret_basic), and the tool call.
// One JSON object per line on stdout; never a token.
//
// usage: node cross_app.mjs < {"server", "issuer", "idp", "idToken", "idpClientId", "idpClientSecret",
//                              "clientId", "clientSecret"}
import {
  Client,
  CrossAppAccessProvider,
  StreamableHTTPClientTransport,
  discoverAndRequestJwtAuthGrant,
} from '@modelcontextprotocol/client';

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString());
}

const config = await readStdin();

const provider = new CrossAppAccessProvider({
  clientId: config.clientId,
  clientSecret: config.clientSecret,
  clientName: 'TS SDK 2.x cross-app access test client',
  expectedIssuer: config.issuer,
  assertion: async (ctx) => {
    emit({
      event: 'assertion',
      authorizationServerUrl: String(ctx.authorizationServerUrl),
      resourceUrl: String(ctx.resourceUrl),
      scope: ctx.scope ?? null,
    });
    const grant = await discoverAndRequestJwtAuthGrant({
      idpUrl: config.idp,
      audience: ctx.authorizationServerUrl,
      resource: ctx.resourceUrl,
      idToken: config.idToken,
      clientId: config.idpClientId,
      clientSecret: config.idpClientSecret,
      scope: ctx.scope,
      fetchFn: ctx.fetchFn,
    });
    emit({ event: 'id_jag', scope: grant.scope ?? null, expiresIn: grant.expiresIn ?? null });
    return grant.jwtAuthGrant;
  },
});

try {
  const transport = new StreamableHTTPClientTransport(new URL(config.server), { authProvider: provider });
  const client = new Client({ name: 'ts-sdk2-cross-app', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
  await client.connect(transport);
  const result = await client.callTool({ name: 'crm_search_contacts', arguments: {} });
  emit({
    event: 'called',
    isError: Boolean(result.isError),
    contacts: result.structuredContent?.contacts?.length ?? 0,
    scope: provider.tokens()?.scope ?? null,
    refresh: Boolean(provider.tokens()?.refresh_token),
  });
  await client.close();
  process.exit(0);
} catch (error) {
  emit({ event: 'error', name: error?.name ?? null, message: String(error?.message ?? error) });
  process.exit(1);
}
