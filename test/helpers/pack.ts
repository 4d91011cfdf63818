/**
 * The package as npm publishes it: `npm pack` in a fresh copy of the project
 * (so `prepack` builds from scratch and nothing stale in the working tree's
 * dist/ can leak in), sharing the repository's node_modules for the build tools.
 */
import { cpSync, symlinkSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runOk } from './child-process.js';

export const repoRoot = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

export interface PackedPackage {
  /** The copy of the project that was packed. */
  project: string;
  /** The .tgz file. */
  tarball: string;
  /** Paths inside the tarball (below package/), sorted. */
  files: string[];
}

/** Packs a fresh copy of the project made in `work`/project; the tarball goes to `work`. */
export async function packFreshCopy(work: string): Promise<PackedPackage> {
  const project = join(work, 'project');
  const skipAtTop = new Set(['dist', '.git', 'test-artifacts', 'examples', 'bench']);
  const skipAnywhere = new Set(['node_modules', '.next']);
  cpSync(repoRoot, project, {
    recursive: true,
    filter: (source) => {
      const rel = relative(repoRoot, source);
      if (rel === '') return true;
      const parts = rel.split(sep);
      if (skipAtTop.has(parts[0]!) || parts.some((part) => skipAnywhere.has(part))) return false;
      return !rel.endsWith('.tgz');
    },
  });
  symlinkSync(join(repoRoot, 'node_modules'), join(project, 'node_modules'), 'dir');

  const packed = await runOk('npm', ['pack', '--json', '--pack-destination', work], project);
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  return { project, tarball: join(work, info!.filename), files: info!.files.map((file) => file.path).sort() };
}

/**
 * `npm install` of `packages` (the packed tarball, pinned versions) into the
 * project at `dir`, quietly and from the cache where it can be.
 */
export async function installInto(
  dir: string,
  packages: readonly string[],
  options: { exact?: boolean; timeoutMs?: number } = {},
): Promise<void> {
  const flags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', ...(options.exact ? ['--save-exact'] : [])];
  await runOk('npm', ['install', ...flags, ...packages], dir, options.timeoutMs);
}
