// The example's "service": answers GET /healthz with the deployed release, on ADDR:PORT.
// It exits by itself after TTL seconds (default 120), so nothing outlives a run for long,
// even one that stopped before its last step (which stops it at once).
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const [addr, port, release, ttl = '120'] = process.argv.slice(2);
const server = createServer((req, res) => {
  if (req.url !== '/healthz') return res.writeHead(404).end();
  res.end(`ok ${readFileSync(release, 'utf8')}`);
});
server.listen(Number(port), addr);
setTimeout(() => process.exit(0), Number(ttl) * 1000);
