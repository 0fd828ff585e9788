// The baseline: an empty functions-framework function that only answers "allowed".
const functions = require('@google-cloud/functions-framework');

functions.http('mutate', (req, res) => {
  res.json({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    response: { uid: req.body?.request?.uid ?? '', allowed: true },
  });
});
