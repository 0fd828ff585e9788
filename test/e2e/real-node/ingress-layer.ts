// Knative's networking layer, simulated as in the kwok suite (support/knative.ts): run detached by
// up.js, until down.sh stops it. kube-apiserver never calls nri through an ingress.
import { ControlPlane } from '../support/control-plane.js';
import { simulateIngressLayer } from '../support/knative.js';

simulateIngressLayer(ControlPlane.attach(process.env.NRI_REAL_NODE_DIR!));
setInterval(() => {}, 1 << 30);
