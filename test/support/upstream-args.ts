// The argument lists the upstream injector is started with today, read from
// their deployers' manifests (2026): upstream's own deployments/server.yaml, the
// SR-IOV Network Operator's DaemonSet, and KubeVirt's HyperConverged operator.
export const ARGUMENT_LISTS = {
  upstream: [
    '-bind-address=0.0.0.0',
    '-port=8443',
    '-tls-private-key-file=/etc/tls/tls.key',
    '-tls-cert-file=/etc/tls/tls.crt',
    '-health-check-port=8444',
    '-logtostderr',
  ],
  sriovOperator: [
    '--bind-address=0.0.0.0',
    '--port=6443',
    '--tls-private-key-file=/etc/tls/tls.key',
    '--tls-cert-file=/etc/tls/tls.crt',
    '--insecure=true',
    '--logtostderr=true',
    '--alsologtostderr=true',
  ],
  kubevirt: [
    '-port=6443',
    '-insecure=true',
    '-tls-min-version=VersionTLS12',
    '-tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
  ],
};
