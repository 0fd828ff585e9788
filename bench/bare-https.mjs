// The HTTPS baseline: a bare node:https server that parses the review and
// answers "allowed", with nothing else in the way. With PATCH (base64
// JSONPatch) set it answers that fixed patch instead: what any injecting
// webhook makes kube-apiserver do, without computing anything.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const patch = process.env.PATCH ? { patchType: 'JSONPatch', patch: process.env.PATCH } : {};
const server = createServer(
  { cert: readFileSync(process.env.CERT), key: readFileSync(process.env.KEY), minVersion: 'TLSv1.2' },
  (req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const body = JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: { uid: review.request.uid, allowed: true, ...patch },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  },
);
server.listen(Number(process.env.PORT), '127.0.0.1');
