// Structural checks of deploy/terraform: parses every .tf and .tfvars file with HashiCorp's
// HCL parser (@cdktf/hcl2json, WebAssembly, works offline) and asserts what the deployment
// promises. Expressions come back as "${...}" strings; literal blocks come back as objects.
// Run: node tests/deploy/terraform_structure.test.mjs (CTest: deploy.terraform_structure).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const tfDir = path.join(root, 'deploy/terraform');
const require = createRequire(import.meta.url);

let hcl;
let YAML;
try {
  hcl = require('@cdktf/hcl2json');
  YAML = require('yaml');
} catch {
  console.error('tests/deploy/node_modules is missing: run scripts/setup.sh (npm ci --prefix tests/deploy)');
  process.exit(1);
}

const parseFile = (file) => hcl.parse(path.basename(file), fs.readFileSync(file, 'utf8'));

// Merges the per-file JSON of a module: blocks keyed by type and name.
async function loadModule(dir) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.tf')).sort();
  const merged = { resource: {}, data: {}, variable: {}, output: {}, locals: {}, provider: {}, terraform: [], text: '' };
  for (const f of files) {
    const j = await parseFile(path.join(dir, f));
    merged.text += fs.readFileSync(path.join(dir, f), 'utf8');
    for (const [type, byName] of Object.entries(j.resource ?? {})) {
      merged.resource[type] ??= {};
      for (const [name, blocks] of Object.entries(byName)) {
        assert.ok(!merged.resource[type][name], `resource ${type}.${name} defined twice`);
        merged.resource[type][name] = blocks[0];
      }
    }
    for (const [type, byName] of Object.entries(j.data ?? {})) {
      merged.data[type] = { ...(merged.data[type] ?? {}), ...byName };
    }
    for (const key of ['variable', 'output']) {
      for (const [name, blocks] of Object.entries(j[key] ?? {})) merged[key][name] = blocks[0];
    }
    for (const block of j.locals ?? []) Object.assign(merged.locals, block);
    Object.assign(merged.provider, j.provider ?? {});
    merged.terraform.push(...(j.terraform ?? []));
  }
  return merged;
}

const tf = await loadModule(tfDir);
const envs = {};
for (const env of ['dev', 'staging', 'prod']) {
  envs[env] = await parseFile(path.join(tfDir, 'envs', `${env}.tfvars`));
}

const res = (type) => tf.resource[type] ?? {};
const only = (type) => {
  const all = Object.entries(res(type));
  assert.equal(all.length, 1, `expected exactly one ${type}, found ${all.length}`);
  return all[0][1];
};
const block = (obj, key) => {
  const b = obj?.[key];
  assert.ok(Array.isArray(b) && b.length > 0, `missing block ${key}`);
  return b[0];
};
// "roles/..." literals inside an expression string or list.
const rolesIn = (expr) => [...JSON.stringify(expr).matchAll(/roles\/[A-Za-z.]+/g)].map((m) => m[0]);
// Every resource of every type, as [type, name, body].
const allResources = () => Object.entries(tf.resource).flatMap(([type, byName]) =>
  Object.entries(byName).map(([name, body]) => [type, name, body]));

// Metric families the server registers: "orchestra_..." string literals in src/.
function registeredMetrics() {
  const registered = new Set();
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cpp|hpp)$/.test(e.name)) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/"(orchestra_[a-z0-9_]+)"/g)) registered.add(m[1]);
      }
    }
  };
  walk(path.join(root, 'src'));
  return registered;
}

// The metric families a PromQL query selects, without the _bucket/_sum/_count suffixes.
const promMetrics = (query) => [...query.matchAll(/(orchestra_[a-z0-9_]+?)(_bucket|_sum|_count)?\{/g)].map((m) => m[1]);

// A PromQL selector's label matchers; the service's own comes in as ${local.prom_selector}.
const selectorRe = /orchestra_[a-z0-9_]+\{((?:\$\{[^}]*\}|[^}])*)\}/g;

// Per-environment concurrency as main.tf derives it.
const concurrencyOf = (v) => (v.concurrency != null ? v.concurrency : Math.min(1000, v.capacity_per_vcpu * Number(v.cpu)));

// Routes the server registers: verb, path and access level, from src/api/*.cpp.
function serverRoutes() {
  const dir = path.join(root, 'src/api');
  const routes = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.cpp'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/http::verb::(\w+)\s*,\s*"([^"]+)"/g)) {
      const access = /Access::k(\w+)/.exec(src.slice(m.index))?.[1];
      routes.push({ verb: m[1], path: m[2], access });
    }
  }
  return routes;
}

const service = only('google_cloud_run_v2_service');
const template = block(service, 'template');
const main = (template.containers ?? []).find((c) => c.name === 'orchestra');

test('server routes the deployment relies on exist and skip API-key auth', () => {
  const routes = serverRoutes();
  for (const [verb, p] of [['get', '/startupz'], ['get', '/healthz'], ['get', '/readyz'], ['post', '/warmup']]) {
    const r = routes.find((x) => x.verb === verb && x.path === p);
    assert.ok(r, `the server registers no ${verb.toUpperCase()} ${p}`);
    assert.equal(r.access, 'Public', `${p} must be Access::kPublic (probes and the scheduler's OIDC token carry no API key)`);
  }
});

test('Cloud Run service: gen2, concurrency, timeout, scaling from variables', () => {
  assert.equal(template.execution_environment, 'EXECUTION_ENVIRONMENT_GEN2');
  assert.equal(template.max_instance_request_concurrency, '${local.concurrency}');
  assert.match(template.timeout, /var\.request_timeout_seconds/);
  const scaling = block(template, 'scaling');
  assert.equal(scaling.min_instance_count, '${var.min_instances}');
  assert.equal(scaling.max_instance_count, '${var.max_instances}');
  assert.match(template.service_account, /google_service_account\.runtime\.email/);
  const traffic = block(service, 'traffic');
  assert.equal(traffic.type, 'TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST');
  assert.equal(traffic.percent, 100);
});

test('main container: CPU boost on, resources from variables, port 8080 as in the image config', () => {
  assert.ok(main, 'no container named orchestra');
  const resources = block(main, 'resources');
  assert.equal(resources.startup_cpu_boost, true, 'startup_cpu_boost must be true');
  assert.equal(resources.limits.cpu, '${var.cpu}');
  assert.equal(resources.limits.memory, '${var.memory}');
  assert.equal(block(main, 'ports').container_port, 8080);
  const config = YAML.parse(fs.readFileSync(path.join(root, 'deploy/orchestra.cloudrun.yaml'), 'utf8'));
  assert.equal(config.server.listen, '0.0.0.0:8080', 'the image config must listen on all interfaces, port 8080');
  assert.ok(
    config.auth.keys.some((k) => k.key_env === 'ORCHESTRA_API_KEY'),
    'the image config must read an API key from ORCHESTRA_API_KEY',
  );
  assert.match(tf.locals.secret_envs, /"ORCHESTRA_API_KEY"/, 'ORCHESTRA_API_KEY must come from Secret Manager');
  const dynamicEnv = main.dynamic?.env ?? [];
  assert.ok(
    dynamicEnv.some((d) => d.for_each === '${local.secret_env}' && JSON.stringify(d.content).includes('secret_key_ref')),
    'secrets must reach the container as env vars from Secret Manager',
  );
});

test('concurrency and max_inflight are one number, derived from the capacity per vCPU', () => {
  const c = tf.locals.concurrency;
  assert.match(c, /var\.capacity_per_vcpu \* tonumber\(var\.cpu\)/, 'concurrency = capacity_per_vcpu x cpu');
  assert.match(c, /min\(1000,/, "Cloud Run's concurrency is at most 1000");
  assert.match(c, /var\.concurrency != null \? var\.concurrency/, 'an explicit concurrency overrides the derivation');
  assert.match(tf.locals.plain_env, /ORCHESTRA_SERVER_MAX_INFLIGHT\s*=\s*tostring\(local\.concurrency\)/);
  assert.equal(tf.variable.concurrency.default, null);
  assert.equal(tf.variable.capacity_per_vcpu.default, 80, 'the default is the server\'s own 80 per core');
  for (const [env, v] of Object.entries(envs)) {
    assert.ok(Number.isInteger(v.capacity_per_vcpu), `${env}.tfvars sets capacity_per_vcpu`);
    assert.ok(!('concurrency' in v), `${env}.tfvars derives concurrency instead of setting it`);
  }
});

test('CI rolls the image with gcloud: Terraform ignores the image (and gcloud\'s stamps) after creation', () => {
  const ignored = block(service, 'lifecycle').ignore_changes;
  for (const f of ['${client}', '${client_version}', '${template[0].containers[0].image}']) {
    assert.ok(ignored.includes(f), `ignore_changes must include ${f}`);
  }
  // Ignoring the revision name would make Terraform's next template change reuse it (409).
  assert.ok(!ignored.some((f) => /revision/.test(f)), 'template[0].revision must not be ignored');
  assert.equal((template.containers ?? [])[0]?.name, 'orchestra', 'containers[0] must be the server (the ignored image)');
});

test('probes point at the paths the server serves', () => {
  const routes = serverRoutes();
  const startup = block(block(main, 'startup_probe'), 'http_get');
  const liveness = block(block(main, 'liveness_probe'), 'http_get');
  assert.equal(startup.path, '/startupz');
  assert.equal(liveness.path, '/healthz');
  for (const p of [startup.path, liveness.path]) {
    assert.ok(routes.some((r) => r.verb === 'get' && r.path === p), `server has no GET ${p}`);
  }
  const sp = block(main, 'startup_probe');
  assert.ok(sp.period_seconds <= 2, 'a millisecond start needs a short startup probe period');
});

test('keep-warm job: POST /warmup with an OIDC token, only while scaling to zero', () => {
  const job = only('google_cloud_scheduler_job');
  assert.match(job.count, /local\.keep_warm/);
  assert.match(tf.locals.keep_warm, /var\.min_instances\s*==\s*0/);
  const target = block(job, 'http_target');
  assert.equal(target.http_method, 'POST');
  assert.match(target.uri, /\/warmup"?$/);
  assert.match(block(target, 'oidc_token').service_account_email, /google_service_account\.warmup\.email/);
  const invoker = res('google_cloud_run_v2_service_iam_member').warmup;
  assert.ok(invoker, 'the warmup account needs run.invoker on the service');
  assert.equal(invoker.role, 'roles/run.invoker');
  assert.match(invoker.member, /google_service_account\.warmup\.member/);
});

test('min instances and keep-warm per environment are as documented in docs/DEPLOY.md', () => {
  const doc = fs.readFileSync(path.join(root, 'docs/DEPLOY.md'), 'utf8');
  const row = (label) => {
    const line = doc.split('\n').find((l) => l.toLowerCase().startsWith(`| ${label.toLowerCase()} |`));
    assert.ok(line, `docs/DEPLOY.md has no table row "| ${label} |"`);
    return line.split('|').slice(2, 5).map((c) => c.trim().replace(/`/g, ''));
  };
  const minDoc = row('min instances');
  const warmDoc = row('keep-warm job');
  const capDoc = row('capacity per vCPU');
  const concDoc = row('concurrency (= server `max_inflight`)');
  const sidecarDoc = row('prometheus sidecar');
  const dataDoc = row('data backend');
  ['dev', 'staging', 'prod'].forEach((env, i) => {
    const v = envs[env];
    assert.equal(v.env, env, `${env}.tfvars must set env = "${env}"`);
    assert.equal(String(v.min_instances), minDoc[i], `${env}: min_instances differs from docs/DEPLOY.md`);
    assert.equal(String(v.capacity_per_vcpu), capDoc[i], `${env}: capacity_per_vcpu differs from docs/DEPLOY.md`);
    assert.equal(String(concurrencyOf(v)), concDoc[i], `${env}: derived concurrency differs from docs/DEPLOY.md`);
    const sidecar = v.prometheus_sidecar ?? tf.variable.prometheus_sidecar.default;
    assert.equal(sidecar ? 'yes' : 'no', sidecarDoc[i], `${env}: Prometheus sidecar differs from docs/DEPLOY.md`);
    assert.equal(v.data_backend ?? tf.variable.data_backend.default, dataDoc[i], `${env}: data backend differs from docs/DEPLOY.md`);
    const warm = v.keep_warm_schedule !== '' && v.min_instances === 0;
    assert.equal(warm ? 'yes' : 'no', warmDoc[i].startsWith('yes') ? 'yes' : 'no', `${env}: keep-warm differs from docs/DEPLOY.md`);
  });
  assert.equal(envs.dev.min_instances, 0, 'dev scales to zero');
  assert.equal(envs.dev.keep_warm_schedule, '', 'dev needs no keep-warm job');
  assert.ok(envs.prod.min_instances >= 1, 'prod keeps an instance');
});

test('tfvars only set declared variables, with values the validations accept', () => {
  for (const [env, v] of Object.entries(envs)) {
    for (const key of Object.keys(v)) assert.ok(tf.variable[key], `${env}.tfvars sets undeclared variable ${key}`);
    assert.ok(['1', '2', '4', '6', '8'].includes(v.cpu), `${env}: cpu`);
    const m = /^(\d+)(Mi|Gi)$/.exec(v.memory);
    assert.ok(m && Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1) >= 512, `${env}: gen2 needs memory >= 512Mi`);
    assert.ok(concurrencyOf(v) >= 1 && concurrencyOf(v) <= 1000, `${env}: concurrency`);
    assert.ok(v.min_instances <= v.max_instances, `${env}: min_instances <= max_instances`);
    for (const k of ['alert_cpu_utilization', 'alert_memory_utilization', 'alert_error_rate']) {
      assert.ok(v[k] > 0 && v[k] <= 1, `${env}: ${k} is a fraction`);
    }
  }
});

test('variables are validated: env, sizing, scaling, thresholds', () => {
  const validated = ['env', 'cpu', 'memory', 'concurrency', 'capacity_per_vcpu', 'min_instances', 'max_instances', 'project_id',
    'region', 'image', 'runtime_service_account_id', 'github_repository', 'alert_latency_p95_ms', 'alert_cpu_utilization',
    'alert_memory_utilization', 'alert_error_rate', 'alert_spend_usd_per_hour', 'alert_upstream_error_share', 'keep_warm_schedule',
    'data_backend', 'firestore_database', 'firestore_root', 'otlp_endpoint', 'trace_sampler', 'trace_sampling_ratio', 'gke_namespace'];
  for (const name of validated) {
    assert.ok(tf.variable[name], `variable ${name} missing`);
    assert.ok(tf.variable[name].validation?.length, `variable ${name} has no validation`);
  }
  assert.equal(tf.variable.env.validation[0].condition, '${contains(["dev", "staging", "prod"], var.env)}');
});

test('main.tf enables the required APIs', () => {
  const apis = tf.locals.required_apis;
  for (const api of ['run', 'artifactregistry', 'secretmanager', 'monitoring', 'logging', 'cloudscheduler', 'iamcredentials', 'sts',
    'cloudtrace', 'telemetry']) {
    assert.ok(apis.includes(`${api}.googleapis.com`), `${api}.googleapis.com is not enabled`);
  }
  assert.match(res('google_project_service').enabled.for_each, /local\.required_apis/);
});

test('four alert policies on the right metrics, thresholds from variables, channels from a variable', () => {
  const policies = res('google_monitoring_alert_policy');
  assert.deepEqual(Object.keys(policies).sort(), ['cpu', 'error_rate', 'latency_p95', 'memory', 'spend_rate', 'upstream_error_share']);
  const expect = {
    latency_p95: ['run.googleapis.com/request_latencies', 'alert_latency_p95_ms'],
    cpu: ['run.googleapis.com/container/cpu/utilizations', 'alert_cpu_utilization'],
    memory: ['run.googleapis.com/container/memory/utilizations', 'alert_memory_utilization'],
    error_rate: ['run.googleapis.com/request_count', 'alert_error_rate'],
  };
  for (const [name, [metric, variable]] of Object.entries(expect)) {
    const p = policies[name];
    const c = block(block(p, 'conditions'), 'condition_threshold');
    assert.ok(c.filter.includes(`metric.type=\\"${metric}\\"`) || c.filter.includes(`metric.type="${metric}"`), `${name}: filter on ${metric}`);
    assert.equal(c.threshold_value, `\${var.${variable}}`, `${name}: threshold from var.${variable}`);
    assert.equal(c.comparison, 'COMPARISON_GT');
    assert.equal(p.notification_channels, '${local.notification_channels}', `${name}: notification channels`);
  }
  const errors = block(block(policies.error_rate, 'conditions'), 'condition_threshold');
  assert.match(errors.filter, /response_code_class=\\?"5xx\\?"/, 'error rate numerator counts 5xx');
  assert.ok(errors.denominator_filter?.includes('run.googleapis.com/request_count'), 'error rate is a share of all requests');
  assert.match(tf.locals.notification_channels, /var\.notification_channels/);
});

test('spend-rate and upstream-error-share alerts: PromQL on metrics the server registers, thresholds from variables', () => {
  const policies = res('google_monitoring_alert_policy');
  const registered = registeredMetrics();
  const query = (name) => {
    const p = policies[name];
    assert.match(p.count, /var\.prometheus_sidecar \? 1 : 0/, `${name} exists only where the sidecar ships the metrics`);
    assert.equal(p.notification_channels, '${local.notification_channels}', `${name}: notification channels`);
    const q = block(block(p, 'conditions'), 'condition_prometheus_query_language').query;
    for (const m of promMetrics(q)) assert.ok(registered.has(m), `${name} queries ${m}, which the server does not register`);
    // Scoped to this service: every selector carries the service's namespace label.
    const selectors = [...q.matchAll(selectorRe)].map((m) => m[1]);
    assert.ok(selectors.length > 0 && selectors.every((sel) => sel.includes('${local.prom_selector}')), `${name}: every selector is scoped to this service`);
    return q;
  };
  const spend = query('spend_rate');
  assert.match(spend, /^sum\(increase\(orchestra_cost_usd_total\{\$\{local\.prom_selector\}\}\[1h\]\)\) > \$\{var\.alert_spend_usd_per_hour\}$/, 'spend over the last hour above the threshold');
  const share = query('upstream_error_share');
  for (const m of ['orchestra_fallbacks_total', 'orchestra_retries_total', 'orchestra_upstream_requests_total']) {
    assert.ok(share.includes(m), `upstream error share uses ${m}`);
  }
  assert.match(share, /\/ sum\(rate\(orchestra_upstream_requests_total\{\$\{local\.prom_selector\}\}\[5m\]\)\) > \$\{var\.alert_upstream_error_share\}/, '(fallbacks + retries) / upstream attempts > threshold');
  assert.match(share, /and on\(\) sum\(increase\(orchestra_upstream_requests_total/, 'quiet below a minimum of upstream attempts');
  const dur = block(block(policies.upstream_error_share, 'conditions'), 'condition_prometheus_query_language').duration;
  assert.match(dur, /var\.alert_duration_seconds/);
  assert.equal(tf.variable.prometheus_sidecar.default, true, 'the Managed Prometheus sidecar is the default');
});

test("dashboard: Cloud Run's latency, CPU, memory, requests and errors plus Orchestra's own metrics", () => {
  const dash = only('google_monitoring_dashboard');
  assert.match(dash.dashboard_json, /local\.dashboard_widgets/);
  const widgets = tf.locals.dashboard_widgets;
  assert.ok(Array.isArray(widgets), 'local.dashboard_widgets must be a literal list');
  const find = (re) => {
    const w = widgets.find((x) => re.test(x.title));
    assert.ok(w, `no dashboard widget titled ${re}`);
    return JSON.stringify(w);
  };
  const latency = find(/latency p95 \(ms\)/i);
  assert.match(latency, /run\.googleapis\.com\/request_latencies/);
  assert.match(latency, /ALIGN_PERCENTILE_95/);
  assert.match(find(/^CPU utilisation/), /container\/cpu\/utilizations/);
  assert.match(find(/^Memory utilisation/), /container\/memory\/utilizations/);
  assert.match(find(/^Request count/), /run\.googleapis\.com\/request_count/);
  const errors = find(/^Error rate/);
  assert.match(errors, /timeSeriesFilterRatio/);
  assert.match(errors, /5xx/);
  // Orchestra's metrics, by the names the server registers.
  const registered = registeredMetrics();
  const promql = widgets.map((w) => JSON.stringify(w)).join('\n');
  for (const [title, metric] of [
    [/^Upstream latency/, 'orchestra_upstream_duration_seconds'],
    [/^Tokens per minute by model$/, 'orchestra_tokens_total'],
    [/^Cost per hour/, 'orchestra_cost_usd_total'],
    [/^Time to first token p95/, 'orchestra_time_to_first_token_seconds_bucket'],
    [/^Fallback and retry rate/, 'orchestra_fallbacks_total'],
    [/^Cache hit ratio$/, 'orchestra_cache_requests_total'],
    [/^Requests in flight/, 'orchestra_http_inflight_requests'],
  ]) {
    assert.ok(find(title).includes(metric), `${title} must query ${metric}`);
  }
  assert.match(find(/^Tokens per minute/), /60 \* sum by \(model\) \(rate\(orchestra_tokens_total/, 'tokens per minute, by model');
  assert.match(find(/^Cost per hour/), /3600 \* sum by \(model\) \(rate\(orchestra_cost_usd_total/, 'USD per hour, by model');
  assert.match(find(/^Time to first token/), /histogram_quantile\(0\.95, sum by \(le, model\)/, 'TTFT p95 by model');
  assert.match(find(/^Fallback and retry rate/), /orchestra_retries_total/);
  assert.match(find(/^Fallback and retry rate/), /\/ sum\(rate\(orchestra_upstream_requests_total/, 'a share of upstream attempts');
  assert.match(find(/^Cache hit ratio/), /result=\\+"hit\\+"\}\[5m\]\)\) \/ sum\(rate\(orchestra_cache_requests_total/, 'hits over all lookups');
  for (const m of promMetrics(promql)) {
    assert.ok(registered.has(m), `dashboard queries ${m}, which the server does not register`);
  }
  for (const m of promql.matchAll(selectorRe)) {
    assert.ok(m[1].includes('${local.prom_selector}'), `a dashboard selector is not scoped to this service: {${m[1]}}`);
  }
});

test('no service account keys anywhere', () => {
  assert.ok(!res('google_service_account_key') || Object.keys(res('google_service_account_key')).length === 0);
  assert.doesNotMatch(tf.text, /google_service_account_key/);
  for (const wf of ['ci.yml', 'deploy.yml']) {
    const text = fs.readFileSync(path.join(root, '.github/workflows', wf), 'utf8');
    assert.doesNotMatch(text, /credentials_json|GOOGLE_APPLICATION_CREDENTIALS|private_key/, `${wf} must not use key files`);
  }
});

test('runtime account: only its own secrets, no project-wide admin role', () => {
  for (const type of ['google_project_iam_binding', 'google_project_iam_policy']) {
    assert.equal(Object.keys(res(type)).length, 0, `${type} is authoritative: use google_project_iam_member`);
  }
  const runtimeGrants = Object.entries(res('google_project_iam_member')).filter(([, r]) =>
    /google_service_account\.runtime\./.test(r.member));
  assert.ok(runtimeGrants.length > 0, 'runtime account has no project roles');
  const unconditional = runtimeGrants.filter(([, r]) => !r.condition);
  const roles = unconditional.flatMap(([, r]) => rolesIn(r.role.includes('each.value') ? tf.locals.runtime_project_roles : r.role));
  // cloudtrace.agent carries telemetry.traces.write, which Google's OTLP endpoint checks.
  assert.deepEqual(
    [...new Set(roles)].sort(),
    ['roles/aiplatform.user', 'roles/cloudtrace.agent', 'roles/logging.logWriter', 'roles/monitoring.metricWriter'],
  );
  // The one conditional grant: datastore.user on Orchestra's Firestore database only.
  const conditional = runtimeGrants.filter(([, r]) => r.condition);
  assert.deepEqual(conditional.map(([name, r]) => [name, r.role]), [['runtime_firestore', 'roles/datastore.user']]);
  for (const role of roles) {
    assert.doesNotMatch(role, /admin|owner|editor|secretAccessor/i, `runtime account must not hold ${role} project-wide`);
  }
  // secretAccessor only on individual secrets.
  const secretGrants = Object.values(res('google_secret_manager_secret_iam_member'))
    .filter((r) => /google_service_account\.runtime\./.test(JSON.stringify(r)));
  assert.ok(secretGrants.length >= 1);
  for (const g of secretGrants) assert.equal(g.role, 'roles/secretmanager.secretAccessor');
});

test('deployer: reachable only through Workload Identity Federation from this repository', () => {
  const provider = only('google_iam_workload_identity_pool_provider');
  assert.match(provider.attribute_condition, /assertion\.repository == '\$\{var\.github_repository\}'/);
  assert.match(provider.attribute_condition, /assertion\.environment == '\$\{var\.env\}'/);
  assert.equal(block(provider, 'oidc').issuer_uri, 'https://token.actions.githubusercontent.com');
  const fed = res('google_service_account_iam_member').deployer_federation;
  assert.equal(fed.role, 'roles/iam.workloadIdentityUser');
  assert.match(fed.member, /^principalSet:\/\/iam\.googleapis\.com\/.*\/attribute\.repository\/\$\{var\.github_repository\}$/);
  // Without a repository there is no federation and no deployer (an --infra run from a
  // checkout without a GitHub remote keeps what the state has: the deploy script's job).
  assert.match(tf.locals.github, /var\.github_repository != ""/);
  for (const [type, name, r] of allResources()) {
    if (/deployer|github/.test(name) || /google_service_account\.deployer|workload_identity_pool\.github/.test(JSON.stringify(r))) {
      assert.match(String(r.count), /local\.github \? 1 : 0/, `${type}.${name} must exist only with a GitHub repository`);
    }
  }
});

// What the deployer may do is what changes at every deploy: push an image, roll it onto
// this service. Everything else is applied by people (--infra).
test('deployer: least privilege, no project-level role, no admin role anywhere', () => {
  const isDeployer = (r) => /google_service_account\.deployer\[0\]\.member/.test(JSON.stringify(r.member ?? ''));
  const grants = allResources().filter(([type, , r]) => /_iam_(member|binding)$/.test(type) && isDeployer(r));
  assert.ok(grants.length > 0, 'no grants to the deployer found');
  for (const [type, name, r] of grants) {
    assert.ok(!type.startsWith('google_project_iam_'), `${type}.${name}: the deployer holds no project-level role`);
    assert.doesNotMatch(r.role, /\.admin$|owner|editor|projectIamAdmin/, `${type}.${name}: the deployer must not hold ${r.role}`);
    assert.ok(!type.startsWith('google_storage_'), `${type}.${name}: CI needs no Terraform state`);
  }
  const by = Object.fromEntries(grants.map(([type, , r]) => [type, r]));
  assert.deepEqual(grants.map(([type, , r]) => `${type} ${r.role}`).sort(), [
    'google_artifact_registry_repository_iam_member roles/artifactregistry.writer',
    'google_cloud_run_v2_service_iam_member roles/run.developer',
    'google_service_account_iam_member roles/iam.serviceAccountUser',
  ]);
  assert.match(by.google_cloud_run_v2_service_iam_member.name, /google_cloud_run_v2_service\.orchestra\.name/, 'run.developer on this service');
  assert.match(by.google_service_account_iam_member.service_account_id, /google_service_account\.runtime\.name/, 'actAs on the runtime account only');
  assert.match(by.google_artifact_registry_repository_iam_member.repository, /google_artifact_registry_repository\.orchestra\.name/, 'writer on this repository only');
  assert.ok(!('deployer_project_roles' in tf.locals), 'no list of project roles for the deployer');
  assert.ok(!tf.variable.state_bucket, 'the deployer gets no state bucket access, so no state_bucket variable');
});

test('Firestore is the default data backend: Native database in the region, TTL on kv.expire_at, no VPC, env for the server', () => {
  assert.equal(tf.variable.data_backend.default, 'firestore');
  assert.match(tf.variable.data_backend.validation[0].condition, /"none", "firestore", "redis", "postgres"/);
  const db = only('google_firestore_database');
  assert.match(db.count, /local\.firestore \? 1 : 0/);
  assert.match(tf.locals.firestore, /var\.data_backend == "firestore"/);
  assert.equal(db.type, 'FIRESTORE_NATIVE');
  assert.match(db.location_id, /var\.region/, "the database lives in the service's region unless firestore_location says otherwise");
  assert.equal(db.name, '${local.firestore_database}');
  assert.match(tf.locals.firestore_database, /local\.name/, 'one database per environment: orchestra-<env>');
  assert.match(db.delete_protection_state, /var\.deletion_protection/);
  const ttl = only('google_firestore_field');
  assert.equal(ttl.collection, 'kv', 'the TTL policy is on the collection group the server writes memory to');
  assert.equal(ttl.field, 'expire_at');
  assert.ok(Array.isArray(ttl.ttl_config) && ttl.ttl_config.length === 1, 'ttl_config {} turns the TTL policy on');
  assert.match(ttl.database, /google_firestore_database\.orchestra\[0\]\.name/);
  const grant = res('google_project_iam_member').runtime_firestore;
  assert.equal(grant.role, 'roles/datastore.user');
  assert.match(grant.count, /local\.firestore/);
  assert.equal(block(grant, 'condition').expression, 'resource.name == "projects/${var.project_id}/databases/${local.firestore_database}"');
  assert.match(tf.locals.vpc_enabled, /contains\(\["redis", "postgres"\], var\.data_backend\)/, 'Firestore needs no VPC');
  assert.deepEqual(tf.locals.data_apis.firestore, ['firestore.googleapis.com']);
  const envBlock = tf.locals.storage_env;
  for (const [k, v] of [
    ['ORCHESTRA_STORAGE_BACKEND', '"firestore"'],
    ['ORCHESTRA_STORAGE_FIRESTORE_PROJECT', 'var.project_id'],
    ['ORCHESTRA_STORAGE_FIRESTORE_DATABASE', 'local.firestore_database'],
    ['ORCHESTRA_STORAGE_FIRESTORE_ROOT', 'var.firestore_root'],
  ]) {
    assert.match(envBlock, new RegExp(`${k}\\s*=\\s*${v.replace(/[.()]/g, '\\$&')}`), `the service gets ${k}`);
  }
  assert.equal(tf.variable.firestore_root.default, 'orchestra');
  assert.match(tf.locals.plain_env, /local\.storage_env/);
  // The service starts only once its account may reach the database and the TTL policy exists.
  assert.ok(service.depends_on.includes('${google_project_iam_member.runtime_firestore}'));
});

test('Cloud Trace: the OTLP endpoint, sampler and ratio reach the service from variables', () => {
  assert.equal(tf.variable.otlp_endpoint.default, 'https://telemetry.googleapis.com');
  assert.equal(tf.variable.trace_sampler.default, 'parentbased_traceidratio');
  assert.equal(tf.variable.trace_sampling_ratio.default, 0.01);
  const t = tf.locals.tracing_env;
  assert.match(t, /OTEL_EXPORTER_OTLP_ENDPOINT\s*=\s*var\.otlp_endpoint/);
  assert.match(t, /OTEL_TRACES_SAMPLER\s*=\s*var\.trace_sampler/);
  assert.match(t, /OTEL_TRACES_SAMPLER_ARG\s*=\s*tostring\(var\.trace_sampling_ratio\)/);
  assert.match(t, /OTEL_RESOURCE_ATTRIBUTES\s*=\s*"gcp\.project_id=\$\{var\.project_id\}/, "Google's endpoint files spans under gcp.project_id");
  assert.match(t, /^\$\{var\.otlp_endpoint == "" \? tomap\(\{\}\)/, 'an empty endpoint sets no tracing variable');
  assert.match(tf.locals.plain_env, /local\.tracing_env/);
  assert.ok(tf.locals.runtime_project_roles.includes('roles/cloudtrace.agent'), 'the runtime account keeps roles/cloudtrace.agent');
});

test('GKE: the Workload Identity binding names the ServiceAccount the manifests create', () => {
  const b = res('google_service_account_iam_member').runtime_gke;
  assert.ok(b, 'no Workload Identity binding for GKE');
  assert.equal(b.role, 'roles/iam.workloadIdentityUser');
  assert.match(b.service_account_id, /google_service_account\.runtime\.name/);
  assert.equal(b.member, 'serviceAccount:${var.project_id}.svc.id.goog[${var.gke_namespace}/orchestra]');
  assert.match(b.count, /var\.gke_namespace != ""/);
  const sa = YAML.parse(fs.readFileSync(path.join(root, 'deploy/kubernetes/base/serviceaccount.yaml'), 'utf8'));
  assert.equal(sa.metadata.name, 'orchestra', 'the binding names KSA orchestra');
});

test('outputs: service URL, accounts, WIF provider, dashboard', () => {
  for (const name of ['service_url', 'runtime_service_account_email', 'deployer_service_account_email', 'warmup_service_account_email',
    'workload_identity_provider', 'dashboard_id', 'github_repository', 'concurrency', 'firestore_database']) {
    assert.ok(tf.output[name], `output ${name} missing`);
  }
});
