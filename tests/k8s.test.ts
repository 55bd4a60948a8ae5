// Validates deploy/k8s offline: renders each overlay with `kubectl kustomize` (or, with no kubectl on the machine, reads
// the base's YAML directly), checks every object against the Kubernetes and KEDA schemas (kubernetes-models), and
// cross-checks the objects against the code: each container's argv against package.json's start scripts, queue names
// against libs/messaging's topology(), environment variables against libs/config, probes and scrape ports against the
// agreed health/metrics listeners. No cluster is needed.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { SERVICE_CATALOGUE } from '@lookup/contracts';
import { declarations, topology } from '@lookup/messaging';
import { ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const K8S = path.join(ROOT, 'deploy', 'k8s');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

/** Every variable libs/config reads (its `read('NAME', ...)` calls), as tests/compose.test.ts finds them. */
const CONFIG_VARIABLES = new Set([...read('libs/config/src/config.ts').matchAll(/\bread(?:<[^>]*>)?\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1]!));
const isConfigVariable = (name: string) => CONFIG_VARIABLES.has(name);
/** The metrics/health listener's port when METRICS_PORT is not set (metrics-names: 9464 in a container). */
const DEFAULT_METRICS_PORT = 9464;
/** The API's health routes (DESIGN: HTTP contract) and the listener's, the same paths. */
const LIVE = '/health/live';
const READY = '/health/ready';

/** The schema of each kind the manifests may contain; an object of any other kind fails the test. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked piecewise below
  data?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: Array<{ name?: string; containerPort: number }>;
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  startupProbe?: { httpGet?: { path: string; port: number | string } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
const HAVE_KUBECTL = !kubectl.error && kubectl.status === 0;
if (!HAVE_KUBECTL) console.warn('kubectl not found: tests/k8s.test.ts checks deploy/k8s/base as written, without kustomize');

/** What is checked: both overlays as kustomize renders them, or without kubectl the base's files as they are. */
const TARGETS = HAVE_KUBECTL ? ['dev', 'production'] : ['base'];

/** The objects of `overlay` (`kubectl kustomize overlays/<overlay>`), or of the base read directly. */
function render(overlay: string): K8sObject[] {
  let text: string;
  if (overlay !== 'base') {
    const r = spawnSync('kubectl', ['kustomize', path.join(K8S, 'overlays', overlay)], { encoding: 'utf8' });
    expect(r.status, `kubectl kustomize overlays/${overlay}:\n${r.stderr}`).toBe(0);
    text = r.stdout;
  } else {
    // No patches, generators or namespace: the checks below hold for the base as much as for the overlays (the
    // overlay-specific ones look at `overlay`).
    const kustomization = parseAllDocuments(read('deploy/k8s/base/kustomization.yaml'))[0]!.toJSON() as {
      resources: string[];
      labels: Array<{ pairs: Record<string, string>; includeTemplates?: boolean }>;
    };
    text = kustomization.resources.map((f) => read(`deploy/k8s/base/${f}`)).join('\n---\n');
    const docs = parse(text);
    // The one transformation the base itself asks kustomize for: its common labels, on objects and pod templates.
    for (const { pairs, includeTemplates } of kustomization.labels) {
      for (const o of docs) {
        o.metadata.labels = { ...o.metadata.labels, ...pairs };
        if (includeTemplates && o.spec?.template?.metadata) o.spec.template.metadata.labels = { ...o.spec.template.metadata.labels, ...pairs };
      }
    }
    return docs;
  }
  return parse(text);
}

function parse(text: string): K8sObject[] {
  const docs = parseAllDocuments(text);
  for (const d of docs) expect(d.errors, 'YAML errors').toEqual([]);
  return docs.map((d) => d.toJSON() as K8sObject).filter(Boolean);
}

let start: { splitCommand(command: string): string[]; readServices(pkg: unknown): Array<{ name: string; argv: string[] }> };
beforeAll(async () => {
  start = await import(pathToFileURL(path.join(ROOT, 'scripts', 'start.mjs')).href);
});

describe.each(TARGETS)('deploy/k8s %s', (overlay) => {
  const objects = render(overlay);
  const of = (kind: string) => objects.filter((o) => o.kind === kind);
  const named = (kind: string, name: string) => of(kind).find((o) => o.metadata.name === name);
  const config = of('ConfigMap').find((c) => c.metadata.name === 'lookup-config')!;
  /** What a container sees for `name`: its own env, else the ConfigMap, else undefined (the default applies). */
  const setting = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value ?? config.data?.[name];
  /** The suite's Deployments (part-of distributed-lookup), with their one container. */
  const suite = of('Deployment')
    .filter((d) => d.metadata.labels?.['app.kubernetes.io/part-of'] === 'distributed-lookup')
    .map((d) => ({ d, name: d.metadata.name, pod: d.spec.template.spec, c: d.spec.template.spec.containers[0] as Container }));
  it('finds the suite: a Deployment per process type, labelled part-of distributed-lookup', () => {
    expect(suite.length).toBe(scripts().length);
  });
  const scripts = () => start.readServices(pkg);
  /** The start script a Deployment runs: `api`, `saga`, `resource-worker`, or `<slug>` for `<slug>-worker`. */
  const scriptOf = (name: string) => scripts().find((s) => s.name === name || `${s.name}-worker` === name);

  it('renders only kinds it can validate, and every object passes its Kubernetes or KEDA schema', () => {
    expect(objects.length).toBeGreaterThanOrEqual(30);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.kind} ${o.metadata?.name}: no schema for ${o.apiVersion}/${o.kind}`).toBeDefined();
      // kustomize wraps a long Secret value's base64 over lines; the API server's decoder skips the newlines, the
      // schema's `byte` format does not, so validate the value as the server reads it.
      const object = o.kind === 'Secret' && o.data ? { ...o, data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, v.replace(/\s+/g, '')])) } : o;
      expect(() => new Model!(object as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
    // The validation is not vacuous: a Deployment without its selector, or a KEDA trigger without a type, fails.
    const broken = structuredClone(suite[0]!.d);
    delete broken.spec.selector;
    expect(() => new Deployment(broken as never).validate()).toThrow();
    const scaled = structuredClone(of('ScaledObject')[0]!);
    delete scaled.spec.triggers[0].type;
    expect(() => new ScaledObject(scaled as never).validate()).toThrow();
  });

  it('has one Deployment per start script, running the one image with exactly the script argv (the image entrypoint kept)', () => {
    expect(suite.map((s) => s.name).sort()).toEqual(
      scripts().map((s) => (['api', 'saga', 'resource-worker'].includes(s.name) ? s.name : `${s.name}-worker`)).sort(),
    );
    const images = new Set(suite.map((s) => s.c.image));
    expect(images.size, `one image: ${[...images].join(', ')}`).toBe(1);
    for (const { name, pod, c } of suite) {
      expect(pod.containers, name).toHaveLength(1);
      // `args`, not `command`: command would replace the image's ENTRYPOINT (tini, which forwards signals and reaps
      // the Ping and resource workers' child processes); compose's `command` replaces CMD only.
      expect(c.command, `${name}: command`).toBeUndefined();
      expect(c.args, `${name}: args vs npm run start:${scriptOf(name)?.name} (node scripts/sync-k8s-args.mjs updates them)`).toEqual(scriptOf(name)!.argv);
    }
    expect(read('Dockerfile')).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--"\]$/m);
  });

  it('sets only variables libs/config reads, from the ConfigMap and the Secret, and no Service links', () => {
    expect(CONFIG_VARIABLES.size).toBeGreaterThanOrEqual(50); // the parse found the list
    for (const key of Object.keys(config.data ?? {})) expect(isConfigVariable(key), `ConfigMap key ${key}`).toBe(true);
    const secretKeys = new Set<string>();
    for (const { name, pod, c } of suite) {
      expect(c.envFrom, name).toEqual([{ configMapRef: { name: 'lookup-config' } }]);
      for (const e of c.env ?? []) {
        expect(isConfigVariable(e.name), `${name}: env ${e.name} is not a libs/config variable`).toBe(true);
        const ref = e.valueFrom?.secretKeyRef;
        if (ref) {
          expect(ref.name, `${name}: ${e.name}`).toBe('lookup-secrets');
          expect(ref.key, `${name}: ${e.name}`).toBe(e.name);
          secretKeys.add(ref.key);
        }
      }
      expect(c.env?.map((e) => e.name), name).toEqual(expect.arrayContaining(['AMQP_URL', 'REDIS_URL']));
      // A Service named `api` would otherwise give every pod API_PORT=tcp://..., which libs/config refuses.
      expect(pod.enableServiceLinks, name).toBe(false);
    }
    // Credentials only in the Secret; the admin and API keys only for the API.
    for (const key of ['AMQP_URL', 'REDIS_URL', 'ADMIN_API_KEY', 'API_KEYS']) {
      expect(secretKeys.has(key), key).toBe(true);
      expect(config.data?.[key], `ConfigMap holds ${key}`).toBeUndefined();
    }
    for (const { name, c } of suite.filter((s) => s.name !== 'api')) {
      expect(c.env?.map((e) => e.name), name).not.toContain('ADMIN_API_KEY');
      expect(c.env?.map((e) => e.name), name).not.toContain('API_KEYS');
    }
    const secret = named('Secret', 'lookup-secrets');
    if (overlay === 'dev') {
      // Generated from dev-secrets.env: every key the pods, KEDA and the dev brokers use, and no other.
      const used = new Set([...secretKeys, ...of('TriggerAuthentication').flatMap((t) => t.spec.secretTargetRef.map((r: { key: string }) => r.key))]);
      for (const d of of('Deployment')) for (const c of d.spec.template.spec.containers as Container[]) for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) used.add(e.valueFrom.secretKeyRef.key);
      expect(Object.keys(secret!.data ?? {}).sort()).toEqual([...used].sort());
    } else {
      expect(secret, `${overlay}: the Secret is created out of band, never committed`).toBeUndefined();
    }
  });

  it('probes the API on its health routes (8080) and every other process on its metrics listener, where Prometheus scrapes it', () => {
    for (const { name, d, c } of suite) {
      const isApi = name === 'api';
      const port = isApi ? Number(setting(c, 'API_PORT')) : Number(setting(c, 'METRICS_PORT') ?? DEFAULT_METRICS_PORT);
      expect(port, `${name}: port`).toBe(isApi ? 8080 : DEFAULT_METRICS_PORT);
      if (!isApi) expect(CONFIG_VARIABLES.has('METRICS_PORT') || setting(c, 'METRICS_PORT') === undefined, name).toBe(true);
      const portName = c.ports?.find((p) => p.containerPort === port)?.name;
      expect(portName, `${name}: a named container port ${port}`).toBeTruthy();
      const at = (probe?: { httpGet?: { path: string; port: number | string } }) => probe?.httpGet && `${probe.httpGet.path}@${probe.httpGet.port}`;
      expect(at(c.livenessProbe), `${name}: liveness`).toBe(`${LIVE}@${portName}`);
      expect(at(c.readinessProbe), `${name}: readiness`).toBe(`${READY}@${portName}`);
      expect(at(c.startupProbe), `${name}: startup`).toBe(`${LIVE}@${portName}`);
      expect(d.spec.template.metadata.annotations, name).toMatchObject({
        'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics',
      });
    }
    // Both listeners answer on the pod's address (probes and Prometheus come from outside the container).
    const api = suite.find((s) => s.name === 'api')!;
    expect(setting(api.c, 'API_HOST')).toBe('0.0.0.0');
    for (const { name, c } of suite.filter((s) => s.name !== 'api')) expect(setting(c, 'METRICS_HOST'), name).toBe('0.0.0.0');
  });

  it('gives every process requests and limits, a PodDisruptionBudget, and a grace period above its shutdown cap', () => {
    const shutdownMs = Number(config.data?.SHUTDOWN_TIMEOUT_MS ?? 10_000);
    for (const { name, d, pod, c } of suite) {
      expect(c.resources?.requests, name).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
      expect(c.resources?.limits, name).toMatchObject({ memory: expect.any(String) });
      const preStopSeconds = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0); // ['sleep', N]
      if (c.lifecycle?.preStop) expect(c.lifecycle.preStop.exec?.command[0], name).toBe('sleep');
      // SIGTERM comes after preStop; the process then takes up to SHUTDOWN_TIMEOUT_MS; keep 5 s of room.
      expect(pod.terminationGracePeriodSeconds * 1000, `${name}: terminationGracePeriodSeconds`).toBeGreaterThanOrEqual(preStopSeconds * 1000 + shutdownMs + 5000);
      const pdbs = of('PodDisruptionBudget').filter((p) =>
        Object.entries(p.spec.selector.matchLabels as Record<string, string>).every(([k, v]) => d.spec.template.metadata.labels[k] === v));
      expect(pdbs.length, `${name}: one PodDisruptionBudget`).toBe(1);
      expect(pod.securityContext, name).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      expect(c as unknown, name).toMatchObject({ securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } });
    }
  });

  it('lets the Ping worker open ICMP sockets (ping_group_range sysctl, as in compose) and nothing else get a sysctl', () => {
    const compose = read('docker-compose.yml');
    const range = /net\.ipv4\.ping_group_range:\s*"([^"]+)"/.exec(compose)![1];
    for (const { name, pod, c } of suite) {
      if (name === 'ping-worker') {
        expect(pod.securityContext.sysctls).toEqual([{ name: 'net.ipv4.ping_group_range', value: range }]);
        // No NET_RAW and no privilege escalation: the system ping cannot work here, so the socket is required.
        expect(setting(c, 'PING_ENGINE')).toBe('socket');
      } else {
        expect(pod.securityContext.sysctls, name).toBeUndefined();
      }
    }
  });

  it('scales every queue consumer with KEDA over the management HTTP API (QueueLength), a trigger per work queue of the topology', () => {
    const namespace = config.data?.NAMESPACE ?? 'lookup';
    const t = topology(namespace);
    const prefetch = config.data?.PREFETCH ?? '64';
    // Each Deployment's queues, as its process consumes them: the saga its events and the completion callbacks,
    // a lookup worker its normal, high and low priority queues (KEDA scales on the largest of the triggers).
    const expected = new Map<string, string[]>([
      ['saga', [t.queues.saga, t.queues.callbacks]],
      ...SERVICE_CATALOGUE.map((s) => [`${s.slug}-worker`, [t.queues.lookup(s.slug), t.queues.lookupPriority(s.slug, 'high'), t.queues.lookupPriority(s.slug, 'low')]] as [string, string[]]),
    ]);
    const scaled = of('ScaledObject');
    expect(scaled.map((s) => s.metadata.name).sort()).toEqual([...expected.keys()].sort());
    // Every work queue of the declared topology (those that dead-letter into the dead-letter exchange: not the delay
    // queues, not the dead-letter queue itself) has a trigger, so no backlog goes unseen by the autoscaler.
    const workQueues = declarations(namespace).queues.filter((q) => q.arguments?.['x-dead-letter-exchange'] === t.exchanges.deadLetter).map((q) => q.name);
    const watched = scaled.flatMap((s) => (s.spec.triggers as Array<{ metadata: { queueName: string } }>).map((tr) => tr.metadata.queueName));
    expect(watched.sort()).toEqual(workQueues.sort());
    const auths = new Map(of('TriggerAuthentication').map((a) => [a.metadata.name, a]));
    for (const s of scaled) {
      expect(s.spec.scaleTargetRef.name).toBe(s.metadata.name);
      expect(named('Deployment', s.spec.scaleTargetRef.name), `${s.metadata.name}: target`).toBeDefined();
      expect(s.spec.minReplicaCount, `${s.metadata.name}: never scaled to zero (the PDB and the saga's deadline sweeps)`).toBeGreaterThanOrEqual(1);
      expect(s.spec.maxReplicaCount).toBeGreaterThan(s.spec.minReplicaCount);
      const triggers = s.spec.triggers as Array<{ type: string; name?: string; metadata: Record<string, string>; authenticationRef: { name: string } }>;
      expect(triggers.map((tr) => tr.metadata.queueName), s.metadata.name).toEqual(expected.get(s.metadata.name));
      expect(new Set(triggers.map((tr) => tr.name)).size, `${s.metadata.name}: distinct trigger names`).toBe(triggers.length);
      for (const trigger of triggers) {
        expect(trigger.type).toBe('rabbitmq');
        expect(trigger.metadata).toEqual({ protocol: 'http', mode: 'QueueLength', value: prefetch, queueName: trigger.metadata.queueName });
        const auth = auths.get(trigger.authenticationRef.name);
        expect(auth, `${s.metadata.name}: TriggerAuthentication`).toBeDefined();
        expect(auth!.spec.secretTargetRef).toEqual([{ parameter: 'host', name: 'lookup-secrets', key: 'RABBITMQ_MANAGEMENT_URL' }]);
      }
    }
    if (overlay === 'dev') {
      // KEDA's operator resolves the host from its own namespace: a fully qualified service name.
      const secret = named('Secret', 'lookup-secrets')!;
      const url = Buffer.from(secret.data!.RABBITMQ_MANAGEMENT_URL!, 'base64').toString();
      expect(new URL(url).hostname).toBe(`rabbitmq.${secret.metadata.namespace}.svc`);
      expect(new URL(url).port).toBe('15672');
    }
  });

  it('scales the API on CPU with an HPA, and serves it through the only suite Service (resource workers are reached over RabbitMQ)', () => {
    const hpa = named('HorizontalPodAutoscaler', 'api')!;
    // An autoscaled Deployment leaves `replicas` to its autoscaler (a value would reset the count on every apply).
    const autoscaled = new Set([hpa.spec.scaleTargetRef.name, ...of('ScaledObject').map((s) => s.spec.scaleTargetRef.name)]);
    for (const { name, d } of suite) expect(d.spec.replicas, `${name}: replicas`).toEqual(autoscaled.has(name) ? undefined : expect.any(Number));
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' });
    expect(hpa.spec.metrics).toEqual([{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: expect.any(Number) } } }]);
    expect(of('HorizontalPodAutoscaler')).toHaveLength(1);
    const api = suite.find((s) => s.name === 'api')!;
    const services = of('Service').filter((s) => s.metadata.labels?.['app.kubernetes.io/part-of'] === 'distributed-lookup');
    expect(services.map((s) => s.metadata.name)).toEqual(['api']);
    const svc = services[0]!;
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) expect(api.d.spec.template.metadata.labels[k]).toBe(v);
    expect(svc.spec.ports).toEqual([expect.objectContaining({ port: 8080, targetPort: 'http' })]);
    // The API reaches resource owners by RabbitMQ request/reply (resource-kit's ResourceClient): a resource worker
    // listens on nothing but its metrics/health port, so there is nothing for a Service to route to.
    const rw = suite.find((s) => s.name === 'resource-worker')!;
    expect(rw.c.ports?.map((p) => p.containerPort)).toEqual([DEFAULT_METRICS_PORT]);
  });

  it('gives the resource workers one ReadWriteMany volume at RESOURCE_DATA_DIR', () => {
    const rw = suite.find((s) => s.name === 'resource-worker')!;
    const claim = (rw.pod.volumes as Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>).find((v) => v.persistentVolumeClaim);
    const pvc = named('PersistentVolumeClaim', claim!.persistentVolumeClaim!.claimName)!;
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    expect(rw.c.volumeMounts).toContainEqual({ name: claim!.name, mountPath: setting(rw.c, 'RESOURCE_DATA_DIR') });
    // Rollback journal, not WAL (WAL's shared memory does not work across hosts on a network file system).
    expect(read('services/resource-worker/src/sqlite.ts')).toMatch(/journal_mode\s*=\s*DELETE/i);
  });

  it('denies all traffic to and from the suite by default and allows what each process needs', () => {
    const policies = new Map(of('NetworkPolicy').map((p) => [p.metadata.name, p.spec]));
    const deny = policies.get('lookup-default-deny')!;
    expect(deny).toEqual({ podSelector: { matchLabels: { 'app.kubernetes.io/part-of': 'distributed-lookup' } }, policyTypes: ['Ingress', 'Egress'] });
    for (const { d } of suite) expect(d.spec.template.metadata.labels['app.kubernetes.io/part-of']).toBe('distributed-lookup');
    expect(policies.get('lookup-api-ingress')!.ingress).toEqual([{ ports: [{ port: 'http', protocol: 'TCP' }] }]);
    const egressPorts = (policies.get('lookup-infrastructure-egress')!.egress[0].ports as Array<{ port: number }>).map((p) => p.port);
    for (const port of [53, 5672, 6379]) expect(egressPorts).toContain(port);
    const scrapePorts = (policies.get('lookup-metrics-scrape')!.ingress[0].ports as Array<{ port: number }>).map((p) => p.port).sort();
    expect(scrapePorts).toEqual([8080, DEFAULT_METRICS_PORT].sort());
    expect(policies.get('lookup-ping-egress')!.egress).toEqual([{}]); // ICMP cannot be named in a NetworkPolicy
  });
});
