import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// In this repository '@fanoutio/eventstream' is a link to the repository root (file:../..), and
// Turbopack resolves nothing outside its root: so the root is the repository. A copy of this
// example that installs the package from the registry needs no next.config at all.
const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** @type {import('next').NextConfig} */
const nextConfig = {
  turbopack: { root: repositoryRoot },
  outputFileTracingRoot: repositoryRoot,
};

export default nextConfig;
