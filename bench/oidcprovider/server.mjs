// make bench's reference server (issue 18): panva/oidc-provider in memory,
// started by bench/oidcprovider.go as a child process and stopped after.
//
// One client (client_secret_basic) with the client_credentials grant;
// introspection on; the default in-memory adapter; no resource indicator is
// ever sent, so access tokens are opaque. It listens on a free loopback
// port and prints "ready <issuer URL>" on stdout once it accepts requests.
// The client's id and secret come from argv so the bench owns them.
import http from 'node:http';
import Provider from 'oidc-provider';

const [clientId = 'bench', clientSecret = 'bench-secret'] = process.argv.slice(2);

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      introspection_endpoint_auth_method: 'client_secret_basic',
    }],
    scopes: ['api:read'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
    },
  });
  // Nothing logged per request: the console would cost the reference
  // server what our server does not pay.
  server.on('request', provider.callback());
  process.stdout.write(`ready ${issuer}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)));
}
