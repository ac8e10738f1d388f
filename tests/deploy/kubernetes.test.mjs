// Offline checks of deploy/kubernetes (Orchestra on GKE): every manifest parses, every
// overlay builds with `kubectl kustomize`, the built objects match the Kubernetes schema
// (the `kubernetes-models` validators, plus a strict check that rejects unknown fields as
// `kubectl --validate=strict` would), and what the manifests promise holds: probes on the
// routes the server serves, a shutdown that covers the server's drain, an HPA on a gauge the
// server exports, Workload Identity and capacity matching the Terraform.
// Run: node tests/deploy/kubernetes.test.mjs (CTest: deploy.kubernetes).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const k8sDir = path.join(root, 'deploy/kubernetes');
const require = createRequire(import.meta.url);

let YAML;
let hcl;
try {
  YAML = require('yaml');
  hcl = require('@cdktf/hcl2json');
  require.resolve('kubernetes-models/apps/v1/Deployment');
} catch {
  console.error('tests/deploy/node_modules is missing: run scripts/setup.sh (npm ci --prefix tests/deploy)');
  process.exit(1);
}

const envNames = ['dev', 'staging', 'prod'];

// kubectl is not a usable Debian package (Debian 12's kubernetes-client is 1.20, whose
// kustomize predates these overlays): like terraform for deploy.terraform_fmt, a machine
// without it reports the test skipped (CTest's SKIP_RETURN_CODE 77); ci.yml installs it.
let kubectlVersion;
try {
  kubectlVersion = JSON.parse(execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
} catch (e) {
  if (e.code === 'ENOENT') {
    console.log('SKIPPED: kubectl is not installed, so the overlays were not built (docs/DEPLOY.md, What was and was not exercised).');
    process.exit(77);
  }
  throw e;
}
const kustomizeMajor = Number(/^v(\d+)\./.exec(kubectlVersion.kustomizeVersion ?? '')?.[1] ?? 0);
if (kustomizeMajor < 5) {
  console.error(`kubectl's kustomize is ${kubectlVersion.kustomizeVersion ?? 'unknown'}; the overlays need kustomize v5 (kubectl 1.27 or later)`);
  process.exit(1);
}

// --- building ----------------------------------------------------------------------------

function kustomize(dir) {
  try {
    return execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('kubectl is not installed: `kubectl kustomize` builds the overlays');
    throw new Error(`kubectl kustomize ${path.relative(root, dir)} failed: ${e.stderr || e.message}`);
  }
}

const parseAll = (text, where) => YAML.parseAllDocuments(text).map((d) => {
  assert.equal(d.errors.length, 0, `${where}: ${d.errors.map((x) => x.message).join('; ')}`);
  return d.toJS();
}).filter((o) => o != null);

const built = Object.fromEntries(envNames.map((env) => [env, parseAll(kustomize(path.join(k8sDir, 'overlays', env)), `overlay ${env}`)]));
const objectOf = (objs, kind) => {
  const all = objs.filter((o) => o.kind === kind);
  assert.equal(all.length, 1, `expected one ${kind}, found ${all.length}`);
  return all[0];
};

// --- schema ------------------------------------------------------------------------------

const models = {
  'v1/Namespace': 'v1/Namespace',
  'v1/ServiceAccount': 'v1/ServiceAccount',
  'v1/ConfigMap': 'v1/ConfigMap',
  'v1/Service': 'v1/Service',
  'apps/v1/Deployment': 'apps/v1/Deployment',
  'policy/v1/PodDisruptionBudget': 'policy/v1/PodDisruptionBudget',
  'autoscaling/v2/HorizontalPodAutoscaler': 'autoscaling/v2/HorizontalPodAutoscaler',
  'networking.k8s.io/v1/NetworkPolicy': 'networking.k8s.io/v1/NetworkPolicy',
};

// The field names each API type allows, read from the models' TypeScript declarations
// (one interface per file; nested types are imported from sibling files).
const dtsCache = new Map();
function resolveDts(spec, fromFile) {
  const candidates = spec.startsWith('.')
    ? [path.resolve(path.dirname(fromFile), `${spec}.d.ts`)]
    : [path.join(here, 'node_modules', `${spec}.d.ts`), path.join(here, 'node_modules/kubernetes-models/node_modules', `${spec}.d.ts`)];
  return candidates.find((c) => fs.existsSync(c));
}
function declaration(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  const text = fs.readFileSync(file, 'utf8');
  const imports = {};
  for (const m of text.matchAll(/import \{ ([^}]+) \} from "([^"]+)";/g)) {
    const target = resolveDts(m[2], file);
    for (const name of m[1].split(',').map((s) => s.trim())) if (target) imports[name] = target;
  }
  const iface = /export interface \w+(?: extends ([^{]+))? \{\n([\s\S]*?)\n\}/.exec(text);
  let decl = null;
  if (iface) {
    const props = new Map();
    for (const m of iface[2].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) props.set(m[1], m[2]);
    if (/TypeMeta/.test(iface[1] ?? '')) {
      props.set('apiVersion', 'string;');
      props.set('kind', 'string;');
    }
    decl = { props, imports };
  }
  dtsCache.set(file, decl);
  return decl;
}
function unknownFields(obj, file, where, out = []) {
  const decl = declaration(file);
  if (!decl || obj == null || typeof obj !== 'object') return out;
  for (const [key, value] of Object.entries(obj)) {
    if (!decl.props.has(key)) {
      out.push(`${where}.${key}`);
      continue;
    }
    const m = /^(Array<)?(IIoK8s\w+)>?;$/.exec(decl.props.get(key));
    const nested = m && decl.imports[m[2]];
    if (!nested) continue;
    if (m[1]) (value ?? []).forEach((v, i) => unknownFields(v, nested, `${where}.${key}[${i}]`, out));
    else unknownFields(value, nested, `${where}.${key}`, out);
  }
  return out;
}

function schemaErrors(obj) {
  const key = `${obj.apiVersion}/${obj.kind}`;
  const model = models[key];
  if (!model) return [`${key}: no schema here (add it to the table in kubernetes.test.mjs)`];
  const Cls = require(`kubernetes-models/${model}`)[obj.kind];
  const errors = [];
  try {
    new Cls(obj).validate();
  } catch (e) {
    errors.push(`${key} ${obj.metadata?.name}: ${e.message}`);
  }
  const file = resolveDts(`kubernetes-models/${model}`, here);
  assert.ok(file, `no declarations for ${key}`);
  for (const f of unknownFields(obj, file, `${obj.kind}/${obj.metadata?.name}`)) errors.push(`unknown field ${f}`);
  return errors;
}

// --- facts from the rest of the repository -------------------------------------------------

function serverRoutes() {
  const dir = path.join(root, 'src/api');
  const routes = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.cpp'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/http::verb::(\w+)\s*,\s*"([^"]+)"/g)) {
      routes.push({ verb: m[1], path: m[2], access: /Access::k(\w+)/.exec(src.slice(m.index))?.[1] });
    }
  }
  return routes;
}

function sourcesMatching(re) {
  const hits = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cpp|hpp)$/.test(e.name) && re.test(fs.readFileSync(p, 'utf8'))) hits.push(p);
    }
  };
  walk(path.join(root, 'src'));
  return hits;
}

const seconds = (d) => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(String(d));
  assert.ok(m, `not a duration: ${d}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2]];
};
const cpuOf = (q) => (String(q).endsWith('m') ? Number(String(q).slice(0, -1)) / 1000 : Number(q));
const envOf = (deployment, configMap) => {
  const c = deployment.spec.template.spec.containers[0];
  const vars = { ...(configMap?.data ?? {}) };
  for (const e of c.env ?? []) if ('value' in e) vars[e.name] = e.value;
  return vars;
};

const imageConfig = YAML.parse(fs.readFileSync(path.join(root, 'deploy/orchestra.cloudrun.yaml'), 'utf8'));
const tfvars = {};
for (const env of envNames) {
  tfvars[env] = await hcl.parse(`${env}.tfvars`, fs.readFileSync(path.join(root, 'deploy/terraform/envs', `${env}.tfvars`), 'utf8'));
}

// --- tests ---------------------------------------------------------------------------------

test('every manifest file parses as YAML', () => {
  const files = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) files.push(p);
    }
  };
  walk(k8sDir);
  assert.ok(files.length >= 8 + 3 * 2, `found only ${files.length} manifest files`);
  for (const f of files) assert.ok(parseAll(fs.readFileSync(f, 'utf8'), path.relative(root, f)).length > 0, `${f} is empty`);
});

test('every overlay builds, with the same set of objects, in its own namespace', () => {
  const kinds = ['ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget',
    'PodMonitoring', 'Service', 'ServiceAccount'];
  for (const env of envNames) {
    assert.deepEqual(built[env].map((o) => o.kind).sort(), kinds, `overlay ${env}`);
    for (const o of built[env]) {
      if (o.kind === 'Namespace') assert.equal(o.metadata.name, `orchestra-${env}`);
      else assert.equal(o.metadata.namespace, `orchestra-${env}`, `${env}: ${o.kind} outside orchestra-${env}`);
    }
    assert.ok(!built[env].some((o) => o.kind === 'Secret'), 'secrets never live in git');
  }
});

test('the built objects match the Kubernetes schema (strict: unknown fields are errors)', () => {
  for (const env of envNames) {
    for (const o of built[env].filter((x) => x.kind !== 'PodMonitoring')) {
      assert.deepEqual(schemaErrors(o), [], `overlay ${env}`);
    }
  }
});

test('the schema check can fail: a misspelt field, a wrong type and a missing field are caught', () => {
  const d = structuredClone(objectOf(built.dev, 'Deployment'));
  d.spec.template.spec.containers[0].readinesProbe = d.spec.template.spec.containers[0].readinessProbe;
  assert.ok(schemaErrors(d).some((e) => /containers\[0\]\.readinesProbe/.test(e)), 'a misspelt probe is reported');
  const p = structuredClone(objectOf(built.dev, 'Deployment'));
  p.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
  assert.ok(schemaErrors(p).some((e) => /containerPort must be integer/.test(e)), 'a string port is reported');
  const h = structuredClone(objectOf(built.dev, 'HorizontalPodAutoscaler'));
  delete h.spec.maxReplicas;
  assert.ok(schemaErrors(h).some((e) => /maxReplicas/.test(e)), 'a missing required field is reported');
});

test('PodMonitoring (Managed Prometheus) scrapes the metrics port of the Deployment\'s pods', () => {
  for (const env of envNames) {
    const pm = objectOf(built[env], 'PodMonitoring');
    assert.equal(pm.apiVersion, 'monitoring.googleapis.com/v1');
    assert.deepEqual(Object.keys(pm.spec).sort(), ['endpoints', 'selector', 'targetLabels']);
    const d = objectOf(built[env], 'Deployment');
    const podLabels = d.spec.template.metadata.labels;
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) assert.equal(podLabels[k], v, `${env}: selector ${k}`);
    const ports = d.spec.template.spec.containers[0].ports;
    assert.equal(pm.spec.endpoints.length, 1);
    const ep = pm.spec.endpoints[0];
    assert.deepEqual(Object.keys(ep).sort(), ['interval', 'path', 'port']);
    const port = ports.find((p) => p.name === ep.port);
    assert.ok(port, `${env}: endpoint port ${ep.port} is not a container port`);
    assert.equal(ep.path, '/metrics');
    assert.ok(seconds(ep.interval) >= 10 && seconds(ep.interval) <= 60, 'scrape interval');
    // The pod label is how the Custom Metrics Stackdriver Adapter matches series to pods.
    assert.ok(pm.spec.targetLabels.metadata.includes('pod'));
    // The key-less metrics listener is the port scraped.
    const listen = envOf(d).ORCHESTRA_OBSERVABILITY_METRICS_LISTEN;
    assert.equal(listen, `0.0.0.0:${port.containerPort}`, `${env}: ORCHESTRA_OBSERVABILITY_METRICS_LISTEN serves the scraped port`);
    // ...and only Managed Prometheus's collectors may reach it.
    const np = objectOf(built[env], 'NetworkPolicy');
    const metricsRule = np.spec.ingress.find((r) => r.ports?.some((p) => p.port === 'metrics'));
    assert.ok(metricsRule?.from?.some((f) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'gmp-system'));
    assert.ok(!np.spec.ingress.some((r) => !r.from && r.ports?.some((p) => p.port === 'metrics')), 'the metrics port is not open to all');
  }
});

test('probes point at the routes the server serves, on the server port, without an API key', () => {
  const routes = serverRoutes();
  for (const env of envNames) {
    const d = objectOf(built[env], 'Deployment');
    const c = d.spec.template.spec.containers[0];
    const http = c.ports.find((p) => p.name === 'http');
    assert.equal(http.containerPort, Number(imageConfig.server.listen.split(':').pop()), 'the image config listens on the http port');
    for (const [probe, want] of [['startupProbe', '/startupz'], ['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']]) {
      const g = c[probe]?.httpGet;
      assert.ok(g, `${env}: ${probe} missing`);
      assert.equal(g.path, want, `${env}: ${probe} path`);
      assert.equal(g.port, 'http', `${env}: ${probe} port`);
      const r = routes.find((x) => x.verb === 'get' && x.path === want);
      assert.ok(r, `the server registers no GET ${want}`);
      assert.equal(r.access, 'Public', `${want} must need no API key`);
    }
    assert.ok(c.startupProbe.periodSeconds <= 2, 'a millisecond start needs a short startup period');
    // /readyz pings storage for at most 2 s: its timeout must exceed that.
    assert.ok(c.readinessProbe.timeoutSeconds > 2, 'readiness timeout above the storage ping');
    const svc = objectOf(built[env], 'Service');
    assert.equal(svc.spec.ports[0].targetPort, 'http');
    for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(d.spec.template.metadata.labels[k], v);
  }
});

test('shutdown: preStop and the grace period cover the server\'s drain', () => {
  const drain = seconds(imageConfig.server.drain_timeout);
  const config = fs.readFileSync(path.join(root, 'docs/CONFIG.md'), 'utf8');
  const op = /\| `storage\.operation_timeout` \| duration \| `([^`]+)` \|/.exec(config);
  assert.ok(op, 'docs/CONFIG.md documents storage.operation_timeout');
  for (const env of envNames) {
    const d = objectOf(built[env], 'Deployment');
    const spec = d.spec.template.spec;
    const c = spec.containers[0];
    const env_ = envOf(d, objectOf(built[env], 'ConfigMap'));
    const podDrain = env_.ORCHESTRA_SERVER_DRAIN_TIMEOUT ? seconds(env_.ORCHESTRA_SERVER_DRAIN_TIMEOUT) : drain;
    const sleep = c.lifecycle?.preStop?.sleep?.seconds;
    assert.ok(sleep >= 3, `${env}: preStop waits for endpoints to drop the pod (sleep action: no shell in the image)`);
    assert.ok(!c.lifecycle.preStop.exec, 'the distroless image has no shell or sleep binary');
    assert.ok(spec.terminationGracePeriodSeconds >= sleep + podDrain + seconds(op[1]),
      `${env}: terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} < preStop ${sleep} + drain ${podDrain} + storage call ${op[1]}`);
    assert.equal(d.spec.replicas, undefined, 'the HPA owns the replica count');
    assert.equal(d.spec.strategy.rollingUpdate.maxUnavailable, 0);
    const pdb = objectOf(built[env], 'PodDisruptionBudget');
    for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(d.spec.template.metadata.labels[k], v);
    assert.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable >= 1);
  }
});

test('HPA: autoscaling/v2 on a Pods custom metric Orchestra exports, aimed below the shedding point', () => {
  const metric = 'prometheus.googleapis.com|orchestra_http_inflight_requests|gauge';
  const [, name, kind] = metric.split('|');
  const gaugeRe = new RegExp(`Add(?:Gauge\\(\\s*"${name}"|Callback\\(\\s*"${name}"[\\s\\S]{0,400}?MetricType::kGauge)`);
  assert.ok(sourcesMatching(gaugeRe).length > 0, `src/ registers no gauge ${name}`);
  assert.equal(kind, 'gauge');
  for (const env of envNames) {
    const h = objectOf(built[env], 'HorizontalPodAutoscaler');
    assert.equal(h.apiVersion, 'autoscaling/v2');
    const d = objectOf(built[env], 'Deployment');
    assert.deepEqual(h.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
    const pods = h.spec.metrics.filter((m) => m.type === 'Pods');
    assert.equal(pods.length, 1, `${env}: one Pods metric`);
    assert.equal(pods[0].pods.metric.name, metric);
    assert.equal(pods[0].pods.target.type, 'AverageValue');
    const maxInflight = Number(envOf(d, objectOf(built[env], 'ConfigMap')).ORCHESTRA_SERVER_MAX_INFLIGHT);
    const target = Number(pods[0].pods.target.averageValue);
    assert.ok(target >= 0.4 * maxInflight && target <= 0.7 * maxInflight,
      `${env}: target ${target} in flight per pod should be 40-70 % of max_inflight ${maxInflight}, so pods are added before they shed`);
    assert.ok(h.spec.minReplicas >= 1 && h.spec.minReplicas <= h.spec.maxReplicas);
  }
  assert.ok(objectOf(built.prod, 'HorizontalPodAutoscaler').spec.minReplicas >= 2, 'prod keeps two pods for disruptions');
});

test('capacity and identity match the Terraform of the same environment', () => {
  for (const env of envNames) {
    const d = objectOf(built[env], 'Deployment');
    const cm = objectOf(built[env], 'ConfigMap');
    const vars = envOf(d, cm);
    const c = d.spec.template.spec.containers[0];
    assert.equal(c.resources.requests.cpu, c.resources.limits.cpu, `${env}: a whole CPU quota sizes the event loops`);
    const cpu = cpuOf(c.resources.limits.cpu);
    assert.equal(Number(vars.ORCHESTRA_SERVER_MAX_INFLIGHT), tfvars[env].capacity_per_vcpu * cpu,
      `${env}: max_inflight = capacity_per_vcpu (envs/${env}.tfvars) x the pod's vCPUs`);
    // Workload Identity: the runtime account Terraform names orchestra-<env>-run, bound to
    // KSA orchestra in orchestra-<env> (gke_namespace).
    const sa = objectOf(built[env], 'ServiceAccount');
    assert.equal(sa.metadata.name, 'orchestra');
    assert.equal(d.spec.template.spec.serviceAccountName, 'orchestra');
    assert.match(sa.metadata.annotations['iam.gke.io/gcp-service-account'], new RegExp(`^orchestra-${env}-run@[a-zA-Z0-9_-]+\\.iam\\.gserviceaccount\\.com$`));
    // Firestore: the database Terraform creates for the environment.
    assert.equal(vars.ORCHESTRA_STORAGE_BACKEND, 'firestore');
    assert.equal(vars.ORCHESTRA_STORAGE_FIRESTORE_DATABASE, `orchestra-${env}`);
    assert.ok(vars.ORCHESTRA_STORAGE_FIRESTORE_PROJECT, `${env}: Firestore project`);
    assert.equal(vars.OTEL_EXPORTER_OTLP_ENDPOINT, 'https://telemetry.googleapis.com');
    assert.equal(vars.OTEL_TRACES_SAMPLER_ARG, '0.01');
    assert.match(vars.OTEL_RESOURCE_ATTRIBUTES, /gcp\.project_id=/);
    // Secrets from a Secret, never inline.
    const key = c.env.find((e) => e.name === 'ORCHESTRA_API_KEY');
    assert.equal(key.valueFrom.secretKeyRef.name, 'orchestra-secrets');
    assert.ok(!c.env.some((e) => /KEY/.test(e.name) && 'value' in e), 'no key in clear');
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(d.spec.template.spec.securityContext.runAsNonRoot, true);
  }
});
