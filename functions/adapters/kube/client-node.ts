// The parts of @kubernetes/client-node nri uses, imported by name so that the
// bundler can leave out the API groups it never calls (a smaller chunk to
// parse at cold start). Loaded lazily, only when a cluster is configured.
export { CoreV1Api, CustomObjectsApi, KubeConfig, Observable } from '@kubernetes/client-node';
