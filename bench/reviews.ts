// AdmissionReviews shaped as kube-apiserver 1.36 sends them, every one unique:
// its own uid, pod name or generated suffix, ServiceAccount admission's
// `kube-api-access-xxxxx` volume and mounts, managedFields and ownerReferences.
// Templates hold tokens that `fill` replaces per request.
import { readFileSync } from 'node:fs';

const TOKENS = /\[<(uid|pod|sa|owner)>\]/g;

/** A template with its tokens replaced by values no other request has had. */
export function fill(template: string, sequence: number): string {
  const hex = sequence.toString(16).padStart(12, '0');
  const short = sequence.toString(36).padStart(5, '0').slice(-5);
  return template.replace(TOKENS, (_, token: string) => {
    switch (token) {
      case 'uid':
        return `7c1e9a40-3b2d-4f6e-9a18-${hex}`;
      case 'owner':
        return `5d2f7b10-8c4e-4a3b-b2d1-${hex}`;
      default:
        return short; // a pod name suffix or the service-account volume's suffix
    }
  });
}

const managedFields = (manager: string) => [
  {
    manager,
    operation: 'Update',
    apiVersion: 'v1',
    time: '2026-12-01T10:00:00Z',
    fieldsType: 'FieldsV1',
    fieldsV1: {
      'f:metadata': {
        'f:annotations': { '.': {}, 'f:k8s.v1.cni.cncf.io/networks': {} },
        'f:generateName': {},
        'f:labels': { '.': {}, 'f:app': {} },
        'f:ownerReferences': { '.': {}, 'k:{"uid":"[<owner>]"}': {} },
      },
      'f:spec': {
        'f:containers': {
          'k:{"name":"testpmd"}': {
            '.': {},
            'f:image': {},
            'f:name': {},
            'f:resources': { '.': {}, 'f:limits': {}, 'f:requests': {} },
          },
        },
        'f:dnsPolicy': {},
        'f:restartPolicy': {},
        'f:schedulerName': {},
      },
    },
  },
];

const serviceAccountVolume = {
  name: 'kube-api-access-[<sa>]',
  projected: {
    defaultMode: 420,
    sources: [
      { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardAPI: {
          items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
        },
      },
    ],
  },
};
const serviceAccountMount = {
  name: 'kube-api-access-[<sa>]',
  readOnly: true,
  mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
};

function envelope(namespace: string, object: Record<string, any>, name?: string): string {
  return JSON.stringify({
    kind: 'AdmissionReview',
    apiVersion: 'admission.k8s.io/v1',
    request: {
      uid: '[<uid>]',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      ...(name ? { name } : {}),
      namespace,
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        uid: 'b3c1',
        groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'],
      },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

/**
 * A DPDK pod of a Deployment scaling up (generateName, no name yet): the
 * shared example's two SR-IOV networks, two containers and hugepages, as its
 * ReplicaSet's pods reach the webhook.
 */
export function dpdkReview(namespace: string, fixture: URL): string {
  const pod = JSON.parse(readFileSync(fixture, 'utf8')).request.object;
  pod.metadata = {
    generateName: 'dpdk-7c9f8d6b5-',
    namespace,
    labels: { app: 'dpdk', 'pod-template-hash': '7c9f8d6b5' },
    annotations: pod.metadata.annotations,
    ownerReferences: [
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        name: 'dpdk-7c9f8d6b5',
        uid: '[<owner>]',
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
    managedFields: managedFields('kube-controller-manager'),
  };
  pod.spec.volumes = pod.spec.volumes.map((volume: { name: string }) =>
    volume.name.startsWith('kube-api-access-') ? serviceAccountVolume : volume,
  );
  for (const container of pod.spec.containers) {
    container.volumeMounts = container.volumeMounts.map((mount: { name: string }) =>
      mount.name.startsWith('kube-api-access-') ? serviceAccountMount : mount,
    );
  }
  return envelope(namespace, pod);
}

/** A KubeVirt virt-launcher pod (KubeVirt 1.9+ relies on the injector): `compute` first, many volumes, a named pod. */
export function virtLauncherReview(namespace: string): string {
  const emptyDirs = [
    'private',
    'public',
    'sockets',
    'hotplug-disks',
    'libvirt-runtime',
    'ephemeral-disks',
    'container-disks',
  ].map((name) => ({ name, emptyDir: {} }));
  const name = 'virt-launcher-vmi-fedora-[<pod>]';
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      generateName: 'virt-launcher-vmi-fedora-',
      namespace,
      labels: {
        'kubevirt.io': 'virt-launcher',
        'kubevirt.io/created-by': '[<owner>]',
        'vm.kubevirt.io/name': 'vmi-fedora',
        'kubevirt.io/nodeName': '',
      },
      annotations: {
        'kubevirt.io/domain': 'vmi-fedora',
        'kubectl.kubernetes.io/default-container': 'compute',
        'kubevirt.io/migrationTransportUnix': 'true',
        'post.hook.backup.velero.io/command':
          '["/usr/bin/virt-freezer", "--unfreeze", "--name", "vmi-fedora", "--namespace", "vms"]',
        'pre.hook.backup.velero.io/command':
          '["/usr/bin/virt-freezer", "--freeze", "--name", "vmi-fedora", "--namespace", "vms"]',
        'k8s.v1.cni.cncf.io/networks': `[{"interface":"pod16367aacb67","mac":"02:00:00:0a:0b:0c","name":"sriov-a","namespace":"${namespace}"}]`,
      },
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachineInstance',
          name: 'vmi-fedora',
          uid: '[<owner>]',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
      managedFields: managedFields('virt-controller'),
    },
    spec: {
      volumes: [...emptyDirs, serviceAccountVolume],
      containers: [
        {
          name: 'compute',
          image: 'quay.io/kubevirt/virt-launcher:v1.9.0',
          command: [
            '/usr/bin/virt-launcher-monitor',
            '--qemu-timeout',
            '288s',
            '--name',
            'vmi-fedora',
            '--uid',
            '[<owner>]',
            '--namespace',
            namespace,
          ],
          resources: {
            limits: {
              'devices.kubevirt.io/kvm': '1',
              'devices.kubevirt.io/tun': '1',
              'devices.kubevirt.io/vhost-net': '1',
              memory: '2302Mi',
              cpu: '2',
            },
            requests: {
              'devices.kubevirt.io/kvm': '1',
              'devices.kubevirt.io/tun': '1',
              'devices.kubevirt.io/vhost-net': '1',
              memory: '2302Mi',
              cpu: '200m',
              'ephemeral-storage': '50M',
            },
          },
          securityContext: {
            capabilities: { add: ['NET_BIND_SERVICE', 'SYS_NICE'], drop: ['NET_RAW'] },
            privileged: false,
            runAsUser: 107,
            runAsGroup: 107,
            runAsNonRoot: true,
          },
          volumeMounts: [
            ...emptyDirs.map((volume) => ({ name: volume.name, mountPath: `/var/run/kubevirt-${volume.name}` })),
            serviceAccountMount,
          ],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
        {
          name: 'volumerootdisk',
          image: 'quay.io/containerdisks/fedora:41',
          resources: { limits: { cpu: '10m', memory: '40M' }, requests: { cpu: '1m', memory: '1M' } },
          volumeMounts: [
            { name: 'container-disks', mountPath: '/var/run/kubevirt-ephemeral-disks/container-disk-data' },
            serviceAccountMount,
          ],
        },
        {
          name: 'guest-console-log',
          image: 'quay.io/kubevirt/virt-launcher:v1.9.0',
          resources: { limits: { cpu: '15m', memory: '60M' }, requests: { cpu: '5m', memory: '35M' } },
          volumeMounts: [
            { name: 'private', mountPath: '/var/run/kubevirt-private', readOnly: true },
            serviceAccountMount,
          ],
        },
      ],
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      automountServiceAccountToken: true,
      securityContext: { runAsUser: 107, runAsGroup: 107, fsGroup: 107, runAsNonRoot: true },
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
      priority: 0,
      enableServiceLinks: false,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {},
  };
  return envelope(namespace, pod, name);
}
