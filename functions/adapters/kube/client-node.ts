// The part of @kubernetes/client-node nri uses: KubeConfig, for the kubeconfig
// or in-cluster configuration and the credentials and TLS settings it yields.
// Requests are plain node:https (kube-client.ts); importing only this lets the
// bundler leave out the generated API classes, most of the library, which
// would otherwise be loaded at every cold start. Loaded lazily, only when a
// cluster is configured.
export { KubeConfig } from '@kubernetes/client-node';
