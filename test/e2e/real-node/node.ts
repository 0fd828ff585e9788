// One real Kubernetes node beside the e2e control plane: containerd 2 with Debian's runc, the
// kubelet, kube-proxy (iptables), Multus over the CNI plugins, a device plugin, metrics-server and an
// image registry, all inside the network namespace up.sh made (this process runs in it) and the node's
// own mount namespace (<dir>/ns/mnt, where /var/lib and /var/log are the node's directories), so
// that nothing they mount, route or filter reaches the machine's own namespaces.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issue } from '../../support/certs.js';
import { cacheDir, ControlPlane } from '../support/control-plane.js';

export const NODE_NAME = 'nri-node';
/** The node's address on its veth link (up.sh); the pods' own network is POD_SUBNET on the bridge cni0. */
export const NODE_IP = '10.77.0.1';
export const POD_SUBNET = '10.244.0.0/24';
export const REGISTRY = 'localhost:5000';
/** A small image with a shell, sleep, cat and ip (busybox), for test pods. */
export const TEST_IMAGE = `${REGISTRY}/nri-e2e/busybox:1`;
export const QUEUE_IMAGE = `${REGISTRY}/nri-e2e/queue-proxy:v0.42.2`;
/** The README's example registry, replaced by the local one as a user replaces it by theirs. */
export const toLocalRegistry = (text: string) => text.replaceAll('registry.example.com', REGISTRY);
/** The extended resources the device plugin offers: the shipped examples' and upstream's e2e suite's. */
export const DEVICE_RESOURCES = [
  'example.com/foo=8',
  'intel.com/sriov=8',
  'intel.com/sriov_netdevice_a=8',
  'intel.com/sriov_netdevice_b=8',
  'example.com/boo=8',
];

/** nri's namespace and the label Knative puts on its revision's pods, as the README installs it. */
export const NRI_NAMESPACE = 'nri';
export const NRI_PODS = 'serving.knative.dev/service=nri';

/** The environment up.sh left running (NRI_REAL_NODE_DIR, as up.sh defaults it), for the tests to talk to. */
export const attachRealNode = (): ControlPlane =>
  ControlPlane.attach(process.env.NRI_REAL_NODE_DIR ?? '/var/tmp/nri-real-node');

/** nri's pods that are not terminating and are Ready. */
export async function readyNriPods(cp: ControlPlane): Promise<any[]> {
  const pods = (await cp.getJson(['pods', '-n', NRI_NAMESPACE, '-l', NRI_PODS])).items;
  return pods.filter(
    (pod: any) =>
      !pod.metadata.deletionTimestamp &&
      pod.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'),
  );
}

const bin = (name: string) => join(cacheDir(), 'bin', name);
const cniBin = join(cacheDir(), 'cni', 'bin');

export class RealNode {
  readonly mountNamespace: string;

  constructor(private readonly cp: ControlPlane) {
    this.mountNamespace = join(cp.dir, 'ns', 'mnt');
  }

  private path(...parts: string[]): string {
    return join(this.cp.dir, ...parts);
  }

  /** A node daemon, started inside the node's mount namespace. */
  private spawn(name: string, command: string, args: string[], env: Record<string, string> = {}): void {
    this.cp.spawn(name, 'nsenter', [`--mount=${this.mountNamespace}`, '--', command, ...args], env);
  }

  /** The image registry, first: the node pulls every image from it. */
  async startRegistry(): Promise<void> {
    this.registry();
    await this.cp.waitFor('the image registry', async () => (await fetch(`http://${REGISTRY}/v2/`)).ok, 30000);
  }

  async start(): Promise<void> {
    this.cni();
    this.containerd();
    await this.cp.waitFor(
      'containerd',
      async () => {
        execFileSync(bin('ctr'), ['--address', this.path('containerd', 'containerd.sock'), 'version'], {
          stdio: 'ignore',
        });
        return true;
      },
      30000,
    );
    this.kubelet();
    await this.cp.waitFor(
      'the node to be Ready',
      async () => {
        const node = await this.cp.getJson(['node', NODE_NAME]);
        return node.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True');
      },
      120000,
    );
    this.kubeProxy();
    this.spawn(
      'device-plugin',
      bin('device-plugin'),
      DEVICE_RESOURCES.flatMap((resource) => ['-resource', resource]),
    );
    await this.cp.waitFor(
      'the device plugin to be allocatable',
      async () => {
        const node = await this.cp.getJson(['node', NODE_NAME]);
        return node.status.allocatable?.['example.com/foo'] === '8';
      },
      60000,
    );
    await this.metricsServer();
  }

  /**
   * metrics-server beside the node, scraping the kubelet's resource metrics every 10 s and served as
   * metrics.k8s.io through kube-apiserver's aggregation layer: the CPU the HPA scales nri on. Its
   * Service has no selector; an EndpointSlice points at the node's address, where it listens.
   */
  private async metricsServer(): Promise<void> {
    const { dir } = this.cp;
    const ca = this.cp.pki.ca;
    const port = 4443;
    const serving = issue(dir, 'metrics-server', '/CN=metrics-server', {
      ca,
      san: `DNS:metrics-server.kube-system.svc,IP:${NODE_IP}`,
    });
    const admin = this.cp.adminKubeconfig;
    this.cp.spawn('metrics-server', bin('metrics-server'), [
      `--bind-address=${NODE_IP}`,
      `--secure-port=${port}`,
      `--tls-cert-file=${serving.cert}`,
      `--tls-private-key-file=${serving.key}`,
      `--kubeconfig=${admin}`,
      `--authentication-kubeconfig=${admin}`,
      `--authorization-kubeconfig=${admin}`,
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-certificate-authority=${ca.cert}`,
      '--metric-resolution=10s',
      '--kubelet-request-timeout=5s',
    ]);
    const labels = { 'app.kubernetes.io/name': 'metrics-server' };
    await this.cp.must(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'metrics-server', namespace: 'kube-system', labels },
            spec: { ports: [{ name: 'https', port: 443, targetPort: port, protocol: 'TCP' }] },
          },
          {
            apiVersion: 'discovery.k8s.io/v1',
            kind: 'EndpointSlice',
            metadata: {
              name: 'metrics-server-node',
              namespace: 'kube-system',
              labels: { ...labels, 'kubernetes.io/service-name': 'metrics-server' },
            },
            addressType: 'IPv4',
            endpoints: [{ addresses: [NODE_IP], conditions: { ready: true } }],
            ports: [{ name: 'https', port, protocol: 'TCP' }],
          },
          {
            apiVersion: 'apiregistration.k8s.io/v1',
            kind: 'APIService',
            metadata: { name: 'v1beta1.metrics.k8s.io', labels },
            spec: {
              service: { name: 'metrics-server', namespace: 'kube-system', port: 443 },
              group: 'metrics.k8s.io',
              version: 'v1beta1',
              caBundle: Buffer.from(this.cp.pki.caPem).toString('base64'),
              groupPriorityMinimum: 100,
              versionPriority: 100,
            },
          },
        ],
      }),
    );
    await this.cp.waitFor(
      'metrics.k8s.io to be Available',
      async () =>
        (await this.cp.getJson(['apiservice', 'v1beta1.metrics.k8s.io'])).status?.conditions?.some(
          (c: any) => c.type === 'Available' && c.status === 'True',
        ),
      60000,
    );
  }

  private registry(): void {
    const config = this.path('registry.yml');
    writeFileSync(
      config,
      `version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: ${this.path('registry')}}
  delete: {enabled: true}
http: {addr: "127.0.0.1:5000"}
`,
    );
    this.spawn('registry', bin('registry'), ['serve', config], { OTEL_TRACES_EXPORTER: 'none' });
  }

  private containerd(): void {
    const dir = this.path('containerd');
    mkdirSync(join(dir, 'certs.d', REGISTRY), { recursive: true });
    writeFileSync(
      join(dir, 'certs.d', REGISTRY, 'hosts.toml'),
      `server = "http://${REGISTRY}"\n[host."http://${REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
    const config = join(dir, 'config.toml');
    writeFileSync(
      config,
      `version = 3
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
[grpc]
  address = "${join(dir, 'containerd.sock')}"
[plugins.'io.containerd.cri.v1.runtime']
  # Root on these machines lacks CAP_SYS_RESOURCE: the kubelet asks oom_score_adj -998 for every
  # sandbox and runc would fail to lower it ("can't get final child's PID from pipe"); containerd
  # clamps it to its own instead (design.md §9).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '/usr/sbin/runc'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['${cniBin}']
    conf_dir = '${this.path('cni', 'net.d')}'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${REGISTRY}/nri-e2e/pause:1'
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = '${join(dir, 'certs.d')}'
`,
    );
    // The shim and runc are found on PATH.
    this.spawn('containerd', bin('containerd'), ['--config', config, '--log-level', 'warn'], {
      PATH: `${join(cacheDir(), 'bin')}:/usr/sbin:/usr/bin:/sbin:/bin`,
    });
  }

  /** Multus (thin plugin) as the node's CNI: the pod network is a bridge, NAD networks its delegates. */
  private cni(): void {
    const kubeconfig = this.cp.writeKubeconfig('multus.kubeconfig', {
      cert: join(this.cp.dir, 'admin.crt'),
      key: join(this.cp.dir, 'admin.key'),
    });
    mkdirSync(this.path('cni', 'net.d'), { recursive: true });
    writeFileSync(
      this.path('cni', 'net.d', '00-multus.conf'),
      JSON.stringify(
        {
          cniVersion: '1.0.0',
          name: 'multus-cni-network',
          type: 'multus',
          kubeconfig,
          binDir: cniBin,
          cniDir: this.path('cni', 'multus'),
          logFile: this.path('multus.log'),
          logLevel: 'verbose',
          delegates: [
            {
              cniVersion: '1.0.0',
              name: 'pods',
              plugins: [
                {
                  type: 'bridge',
                  bridge: 'cni0',
                  isGateway: true,
                  ipMasq: false,
                  hairpinMode: true,
                  ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }] },
                },
                { type: 'portmap', capabilities: { portMappings: true } },
              ],
            },
          ],
        },
        null,
        2,
      ),
    );
  }

  private kubelet(): void {
    const dir = this.path('kubelet-config');
    mkdirSync(dir, { recursive: true });
    const ca = this.cp.pki.ca;
    issue(dir, 'kubelet-client', `/O=system:nodes/CN=system:node:${NODE_NAME}`, { ca, client: true });
    issue(dir, 'kubelet-serving', `/CN=${NODE_NAME}`, { ca, san: `IP:${NODE_IP},DNS:${NODE_NAME}` });
    this.cp.writeKubeconfig('kubelet.kubeconfig', {
      cert: join(dir, 'kubelet-client.crt'),
      key: join(dir, 'kubelet-client.key'),
    });
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts only the cgroup v1 hierarchy (design.md §9); kubelet 1.35 and later refuse
# to start on it unless told that v1 is accepted here.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://${this.path('containerd', 'containerd.sock')}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: ${ca.cert}}
authorization: {mode: Webhook}
tlsCertFile: ${join(dir, 'kubelet-serving.crt')}
tlsPrivateKeyFile: ${join(dir, 'kubelet-serving.key')}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
clusterDomain: cluster.local
failSwapOn: false
# A shared test machine's disk and memory are not the node's to guard: no evictions, no image GC.
evictionHard: {memory.available: "1Mi", nodefs.available: "0%", imagefs.available: "0%", nodefs.inodesFree: "0%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
nodeStatusReportFrequency: 10s
syncFrequency: 10s
`,
    );
    this.startKubelet();
  }

  private startKubelet(): void {
    this.spawn('kubelet', bin('kubelet'), [
      '--config',
      this.path('kubelet-config', 'config.yaml'),
      '--kubeconfig',
      this.path('kubelet.kubeconfig'),
      '--hostname-override',
      NODE_NAME,
      '--node-ip',
      NODE_IP,
      '--v=1',
    ]);
  }

  /** Stops the kubelet (SIGTERM, as systemd stops it) and starts it again; the containers keep running meanwhile. */
  async restartKubelet(downMs: number): Promise<void> {
    const pid = Number(readFileSync(this.path('pids', 'kubelet'), 'utf8'));
    process.kill(pid, 'SIGTERM');
    await this.cp.waitFor(
      'the kubelet to exit',
      async () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      30000,
    );
    await new Promise((resolve) => setTimeout(resolve, downMs));
    this.startKubelet();
  }

  private kubeProxy(): void {
    const kubeconfig = this.cp.writeKubeconfig('kube-proxy.kubeconfig', {
      cert: join(this.cp.dir, 'admin.crt'),
      key: join(this.cp.dir, 'admin.key'),
    });
    const config = this.path('kube-proxy.yaml');
    writeFileSync(
      config,
      `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: ${kubeconfig}}
hostnameOverride: ${NODE_NAME}
mode: iptables
clusterCIDR: ${POD_SUBNET}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Pods on one bridge reach each other's Services: without br_netfilter the reply would skip the
# DNAT's conntrack entry, so every Service connection is masqueraded through the node.
iptables: {masqueradeAll: true}
# Leave the machine-wide conntrack table size alone.
conntrack: {maxPerCore: 0}
`,
    );
    this.spawn('kube-proxy', bin('kube-proxy'), ['--config', config, '--v=1']);
  }
}
