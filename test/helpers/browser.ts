/** Headless Chromium (Debian's) driven by playwright-core, for the browser tests. */
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { requireProgram } from './requirements.js';

export const CHROMIUM = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Call first in every browser test: `if (!requireChromium(t)) return;`. */
export function requireChromium(t: TestContext): boolean {
  return requireProgram(t, existsSync(CHROMIUM), `${CHROMIUM} not found: browser tests cannot run (apt-get install chromium)`);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}
