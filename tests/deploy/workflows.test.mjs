// Structural checks of .github/workflows (yamllint checks the syntax): CI runs `make test`
// on pull requests on Debian 12; deploy builds both architectures with the GitHub Actions
// cache, authenticates only through Workload Identity Federation from GitHub environments,
// and deploys dev -> staging -> prod with prod in its own (approval-gated) environment.
// Run: node tests/deploy/workflows.test.mjs (CTest: deploy.workflows).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const require = createRequire(import.meta.url);
let YAML;
try {
  YAML = require('yaml');
} catch {
  console.error('tests/deploy/node_modules is missing: run scripts/setup.sh (npm ci --prefix tests/deploy)');
  process.exit(1);
}

const load = (name) => YAML.parse(fs.readFileSync(path.join(root, '.github/workflows', name), 'utf8'));
const ci = load('ci.yml');
const deploy = load('deploy.yml');
const stepsUsing = (job, action) => (job.steps ?? []).filter((s) => s.uses?.startsWith(`${action}@`));
const envName = (job) => (typeof job.environment === 'string' ? job.environment : job.environment?.name);

test('ci.yml: make test on pull requests, on Debian 12', () => {
  assert.ok('pull_request' in ci.on, 'ci.yml must run on pull_request');
  const jobs = Object.values(ci.jobs);
  const testJob = jobs.find((j) => (j.steps ?? []).some((s) => /^\s*make test\s*$/m.test(s.run ?? '')));
  assert.ok(testJob, 'no job runs `make test`');
  assert.equal(testJob.container, 'debian:12');
  assert.ok(stepsUsing(testJob, 'actions/checkout').length === 1);
});

test('deploy.yml: multi-arch build with buildx and the GitHub Actions cache', () => {
  const build = deploy.jobs.build;
  const platforms = build.strategy.matrix.include.map((m) => m.platform).sort();
  assert.deepEqual(platforms, ['linux/amd64', 'linux/arm64']);
  assert.equal(stepsUsing(build, 'docker/setup-buildx-action').length, 1);
  const [push] = stepsUsing(build, 'docker/build-push-action');
  assert.ok(push, 'no docker/build-push-action step');
  assert.equal(push.with.file, 'deploy/Dockerfile');
  assert.equal(push.with.platforms, '${{ matrix.platform }}');
  assert.match(push.with['cache-from'], /type=gha/);
  assert.match(push.with['cache-to'], /type=gha,mode=max/);
  assert.match(push.with.outputs, /push=true/);
  const merge = deploy.jobs.merge;
  assert.ok([merge.needs].flat().includes('build'));
  assert.match(JSON.stringify(merge.steps), /imagetools create/);
});

test('deploy.yml: Workload Identity Federation only, from GitHub environments', () => {
  for (const [name, job] of Object.entries(deploy.jobs)) {
    for (const auth of stepsUsing(job, 'google-github-actions/auth')) {
      assert.ok(auth.with.workload_identity_provider, `${name}: auth without workload_identity_provider`);
      assert.ok(auth.with.service_account, `${name}: auth without service_account`);
      assert.ok(!('credentials_json' in auth.with), `${name}: key-based auth`);
      assert.equal(job.permissions?.['id-token'], 'write', `${name}: needs id-token: write for WIF`);
      // The provider's attribute condition accepts only tokens from the matching environment.
      assert.ok(['dev', 'staging', 'prod'].includes(envName(job)), `${name}: GCP access outside an environment`);
    }
  }
  assert.equal(deploy.permissions?.contents, 'read', 'workflow default permissions must be read-only');
});

test('deploy.yml: dev -> staging -> prod, prod behind its own environment', () => {
  const chain = [['deploy-dev', 'dev', 'merge'], ['deploy-staging', 'staging', 'deploy-dev'], ['deploy-prod', 'prod', 'deploy-staging']];
  for (const [jobName, env, needs] of chain) {
    const job = deploy.jobs[jobName];
    assert.ok(job, `missing job ${jobName}`);
    assert.equal(envName(job), env, `${jobName} must run in environment ${env}`);
    assert.ok([job.needs].flat().includes(needs), `${jobName} must need ${needs}`);
    const run = job.steps.map((s) => s.run ?? '').join('\n');
    assert.match(run, /deploy\/scripts\/apply_performance_optimizations\.sh/);
    assert.match(run, new RegExp(`--env ${env}\\b`));
    assert.match(run, /--skip-build/, `${jobName} deploys the image built once, not a rebuild`);
    assert.ok(fs.existsSync(path.join(root, 'deploy/terraform/envs', `${env}.tfvars`)));
  }
  assert.ok(!('pull_request' in deploy.on), 'pull requests must never deploy');
});

// CI's deployer may only push images and roll them onto its service (terraform_structure
// checks its roles): no job runs Terraform or asks the script for --infra, which a person
// runs with their own credentials.
test('deploy.yml: CI rolls images only; no Terraform, no --infra', () => {
  for (const [name, job] of Object.entries(deploy.jobs)) {
    assert.equal(stepsUsing(job, 'hashicorp/setup-terraform').length, 0, `${name} must not set up Terraform`);
    const run = (job.steps ?? []).map((s) => s.run ?? '').join('\n');
    assert.doesNotMatch(run, /(^|\s)terraform\s/m, `${name} must not run terraform`);
    assert.doesNotMatch(run, /--infra|--configure-github/, `${name} must not apply infrastructure`);
  }
  const usedVars = new Set([...JSON.stringify(deploy).matchAll(/vars\.([A-Z_]+)/g)].map((m) => m[1]));
  const script = fs.readFileSync(path.join(root, 'deploy/scripts/apply_performance_optimizations.sh'), 'utf8');
  for (const v of usedVars) {
    assert.match(script, new RegExp(`gh variable set ${v}\\b`), `--configure-github must set ${v}, which deploy.yml reads`);
  }
});
