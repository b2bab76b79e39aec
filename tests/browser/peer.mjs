// A browser softphone for Callisto's integration tests: Debian's Chromium, headless, driven by
// playwright-core, running phone.html (JsSIP) with fake camera and microphone.
//
//   node peer.mjs '<config JSON>'
//
// Config (every field optional): { name, chromium, audioFile, video: {width, height, fps},
// autoAnswer, autoAnswerVideo, preferH264, bundlePolicy, userDataDir, debugSip }.
//
// Control: one JSON object per line on stdin, each with a `cmd` and an optional `id` that the
// reply repeats:
//   {"cmd":"register","ws":"ws://127.0.0.1:P","uri":"sip:bob@127.0.0.1","password":"…"}
//   {"cmd":"call","target":"sip:alice@127.0.0.1","video":true,"preferH264":true}
//   {"cmd":"answer","video":true}   {"cmd":"hangup"}   {"cmd":"hold","on":true}   {"cmd":"unregister"}
//   {"cmd":"configure","autoAnswer":true,…}   {"cmd":"stats"}   {"cmd":"quit"}
// Output: one JSON object per line on stdout. Replies are {"event":"ok"|"error","id","cmd",…}
// (stats: {"event":"stats","id","stats":{…}}); the page's events are {"event":"registered"|…}
// (see phone.js). Every line carries `unix_ms`, the wall clock when it was written. Diagnostics
// (page console, Chromium's output with debugSip) go to stderr.
//
// Network: the page is served on 127.0.0.1 by this process; Chromium runs with background
// networking, component updates, sync and metrics reporting off, no ICE server, loopback ICE
// candidates allowed and mDNS obfuscation of host candidates off. Nothing leaves loopback.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

// Playwright passes its own --disable-features list; Chromium keeps only the last such switch,
// so ours repeats Playwright's network-related entries beside the ones the tests need.
const DISABLED_FEATURES = [
  'WebRtcHideLocalIpsWithMdns',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'PreconnectToSearch',
  'MediaRouter',
  'DialMediaRouteProvider',
  'Translate',
  'AutofillServerCommunication',
  'CertificateTransparencyComponentUpdater',
  'InterestFeedContentSuggestions',
  'DestroyProfileOnBrowserClose',
  'HttpsUpgrades',
  'HttpsFirstBalancedModeAutoEnable',
  'PaintHolding',
  'ThirdPartyStoragePartitioning',
];

function write(line) {
  process.stdout.write(`${JSON.stringify(Object.assign(line, { unix_ms: Date.now() }))}\n`);
}

function log(message) {
  process.stderr.write(`[peer ${config.name}] ${message}\n`);
}

const config = Object.assign(
  {
    name: 'browser',
    chromium: '/usr/bin/chromium',
    audioFile: null,
    video: { width: 640, height: 480, fps: 30 },
    autoAnswer: false,
    autoAnswerVideo: true,
    preferH264: false,
    bundlePolicy: 'max-bundle',
    userDataDir: null,
    debugSip: false,
  },
  JSON.parse(process.argv[2] || '{}'),
);

// JsSIP ships CommonJS only; the page gets it bundled as one script with the global `JsSIP`.
async function bundleJsSip() {
  const result = await build({
    entryPoints: [join(here, 'node_modules', 'jssip', 'lib', 'JsSIP.js')],
    bundle: true,
    format: 'iife',
    globalName: 'JsSIP',
    platform: 'browser',
    write: false,
    logLevel: 'error',
  });
  return result.outputFiles[0].contents;
}

// Serves the page and its scripts on 127.0.0.1 (a secure context, so getUserMedia works).
async function servePage() {
  const files = new Map([
    ['/', { type: 'text/html', body: await readFile(join(here, 'phone.html')) }],
    ['/phone.js', { type: 'text/javascript', body: await readFile(join(here, 'phone.js')) }],
    ['/jssip.js', { type: 'text/javascript', body: await bundleJsSip() }],
  ]);
  const server = createServer((request, response) => {
    const path = request.url.split('?')[0];
    if (path === '/favicon.ico') {
      response.writeHead(204).end();
      return;
    }
    const file = files.get(path);
    if (!file) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

function chromiumArgs() {
  const { width, height, fps } = config.video;
  const args = [
    // Fake devices, granted without a prompt; the fake camera runs at the wanted rate.
    `--use-fake-device-for-media-stream=fps=${fps}`,
    '--use-fake-ui-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    // ICE on loopback, with real addresses (no mDNS names) in candidates.
    '--allow-loopback-in-peer-connection',
    `--disable-features=${DISABLED_FEATURES.join(',')}`,
    '--force-webrtc-ip-handling-policy=default',
    // Nothing in the background may reach for the network.
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-domain-reliability',
    '--disable-client-side-phishing-detection',
    '--metrics-recording-only',
    '--no-first-run',
    '--no-default-browser-check',
    '--no-pings',
    '--disable-quic',
    '--disable-gpu',
    `--window-size=${width},${height}`,
  ];
  if (config.audioFile) {
    args.push(`--use-file-for-fake-audio-capture=${config.audioFile}`);
  }
  return args;
}

async function main() {
  const server = await servePage();
  const { port } = server.address();
  const launchOptions = {
    executablePath: config.chromium,
    headless: true,
    args: chromiumArgs(),
    // Playwright's own handlers would kill Chromium on our signals before we close it cleanly.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  };
  const browser = config.userDataDir
    ? null
    : await chromium.launch(launchOptions);
  const context = browser
    ? await browser.newContext({ viewport: { width: config.video.width, height: config.video.height } })
    : await chromium.launchPersistentContext(config.userDataDir, Object.assign(launchOptions, {
      viewport: { width: config.video.width, height: config.video.height },
    }));
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (message) => log(`console.${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log(`page error: ${error.stack || error}`));
  page.on('crash', () => {
    write({ event: 'page_crashed' });
  });
  await page.exposeFunction('callistoEvent', (event) => write(event));
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => window.phone !== undefined && window.JsSIP !== undefined);
  await page.evaluate((options) => window.phone.configure(options), {
    autoAnswer: config.autoAnswer,
    autoAnswerVideo: config.autoAnswerVideo,
    preferH264: config.preferH264,
    bundlePolicy: config.bundlePolicy,
    video: config.video,
    debug: config.debugSip,
    listenFor: config.listenFor || [],
  });

  let closing = false;
  const close = async (code) => {
    if (closing) {
      return;
    }
    closing = true;
    try {
      await page.evaluate(() => window.phone.hangup()).catch(() => {});
      await context.close().catch(() => {});
      if (browser) {
        await browser.close().catch(() => {});
      }
    } finally {
      server.close();
      write({ event: 'closed' });
      process.exit(code);
    }
  };
  process.on('SIGTERM', () => close(0));
  process.on('SIGINT', () => close(0));

  const userAgent = await page.evaluate(() => navigator.userAgent);
  write({ event: 'ready', page: `http://127.0.0.1:${port}/`, user_agent: userAgent, pid: process.pid });

  const handle = async (request) => {
    const { cmd, id } = request;
    const args = Object.assign({}, request);
    delete args.cmd;
    delete args.id;
    try {
      switch (cmd) {
        case 'register':
        case 'call':
        case 'answer':
        case 'hangup':
        case 'hold':
        case 'unregister':
        case 'configure': {
          const result = await page.evaluate(
            ([method, methodArgs]) => window.phone[method](methodArgs),
            [cmd, args],
          );
          write(Object.assign({ event: 'ok', id, cmd }, result || {}));
          break;
        }
        case 'stats': {
          const stats = await page.evaluate(() => window.phone.stats());
          write({ event: 'stats', id, stats });
          break;
        }
        case 'quit':
          write({ event: 'ok', id, cmd });
          await close(0);
          break;
        default:
          write({ event: 'error', id, cmd, message: `unknown command ${JSON.stringify(cmd)}` });
      }
    } catch (error) {
      write({ event: 'error', id, cmd, message: String(error && error.message ? error.message : error) });
    }
  };

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') {
      return;
    }
    let request;
    try {
      request = JSON.parse(line);
    } catch (error) {
      write({ event: 'error', message: `not JSON: ${error.message}` });
      return;
    }
    handle(request);
  });
  // The test harness closes stdin (or dies): leave with it.
  lines.on('close', () => close(0));
}

main().catch((error) => {
  write({ event: 'fatal', message: String(error && error.stack ? error.stack : error) });
  process.exit(1);
});
