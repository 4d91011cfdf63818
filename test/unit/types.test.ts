// The public types, checked the way a user's strict TypeScript project checks them: the fixtures in
// test/types compile, and every line marked as an expected error really fails, on that line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const fixtures = join(root, 'test/types');
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const DIRECTIVE = /^\s*\/\/ @ts-expect-error\b/;

async function compile(project: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout } = await run(process.execPath, [tsc, '-p', project, '--pretty', 'false'], { cwd: root });
    return { ok: true, output: stdout };
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return { ok: false, output: stdout + stderr };
  }
}

const files = readdirSync(fixtures).filter((name) => name.endsWith('.ts'));

test('the type fixtures compile under strict, expected errors included', async () => {
  const { ok, output } = await compile(join(fixtures, 'tsconfig.json'));
  assert.ok(ok, output);
});

test('each expected error is a real error on its own line', async (t) => {
  // A copy of the fixtures beside the originals (so their imports resolve), directives removed.
  const scratch = mkdtempSync(join(fixtures, '.unmarked-'));
  t.after(() => rmSync(scratch, { recursive: true, force: true }));
  const expected = new Set<string>();
  for (const name of files) {
    const lines = readFileSync(join(fixtures, name), 'utf8').split('\n');
    const kept = lines.map((line, i) => {
      if (!DIRECTIVE.test(line)) return line;
      // Line numbers stay put: the directive becomes a blank line and the next line must now fail.
      expected.add(`${name}:${i + 2}`);
      return '';
    });
    writeFileSync(join(scratch, name), kept.join('\n').replaceAll("'../../src/", "'../../../src/"));
  }
  cpSync(join(fixtures, 'tsconfig.json'), join(scratch, 'tsconfig.json'));
  writeFileSync(
    join(scratch, 'tsconfig.json'),
    JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { rootDir: '../../..' }, include: ['*.ts'] }),
  );
  assert.ok(expected.size >= 10, `only ${expected.size} expected errors found`);
  const { ok, output } = await compile(join(scratch, 'tsconfig.json'));
  assert.equal(ok, false, 'removing the directives should make the fixtures fail');
  const failing = new Set<string>();
  for (const match of output.matchAll(/([\w-]+\.ts)\((\d+),\d+\): error TS\d+/g)) failing.add(`${match[1]}:${match[2]}`);
  assert.deepEqual([...failing].sort(), [...expected].sort(), output);
});
