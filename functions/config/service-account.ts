// Where the kubelet mounts a pod's service-account files (token, ca.crt,
// namespace). NRI_MOUNT_ROOT, when set, is the folder a pod's filesystem is laid
// out in, for running nri as a pod runs it, outside one (the e2e suite does).
import { join } from 'node:path';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export const serviceAccountDir = (env: Record<string, string | undefined>): string =>
  join(env.NRI_MOUNT_ROOT ?? '/', SERVICE_ACCOUNT_DIR);
