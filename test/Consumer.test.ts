/**
 * The published packages as a user gets them: each public package is built
 * and packed as `pnpm publish` would pack it, the tarballs are installed with
 * npm into a fresh project outside the workspace, and `consumer/main.ts` is
 * type-checked under NodeNext and Bundler resolution, compiled, and run with
 * plain `node`: first with every peer at the lowest version of its range
 * (`^3.22.4`: 3.22.4), then, after one more `npm install` in the same
 * project, with every peer at the newest version its range allows.
 *
 * A new public package adds an entry to `packages` and a line to
 * `consumer/main.ts` (docs/ARCHITECTURE.md, "Adding a public package").
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "..")

/** The public packages, by directory. */
const packages = ["packages/resilience", "packages/saga", "packages/chaos", "packages/http", "packages/outbox"]

/** What a tarball may hold, below `package/`. */
const allowed = new Set(["dist", "LICENSE", "README.md", "package.json"])

interface Manifest {
  readonly name: string
  readonly version: string
  readonly private?: boolean
  readonly packageManager?: string
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>
  readonly devDependencies?: Record<string, string>
}

const manifest = (dir: string): Manifest => JSON.parse(fs.readFileSync(path.join(root, dir, "package.json"), "utf8"))

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout = 240_000): Promise<Run> =>
  new Promise((resolve) => {
    execFile(command, args, { cwd, timeout, maxBuffer: 64 * 1024 * 1024, env: process.env }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ code, stdout, stderr: error !== null && stderr === "" ? String(error) : stderr })
    })
  })

/** Runs and fails the test with the command's output when it does not exit 0. */
const ok = async (command: string, args: ReadonlyArray<string>, cwd: string, timeout?: number): Promise<string> => {
  const result = await run(command, args, cwd, timeout)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${result.code}\n${result.stdout}\n${result.stderr}`)
  }
  return result.stdout
}

/** pnpm: from PATH, else the version the repository pins, through npx. */
const pnpm = async (args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const onPath = await run("pnpm", ["--version"], cwd, 60_000)
  if (onPath.code === 0) return ok("pnpm", args, cwd)
  const pinned = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).packageManager as string
  return ok("npx", ["-y", pinned, ...args], cwd)
}

/** Whether npm's registry answers; outside CI an unreachable one skips the test. */
const reachable = (await run("npm", ["ping"], root, 30_000)).code === 0
const ci = process.env["CI"] === "true"
if (!reachable && !ci) {
  console.warn("the npm registry is unreachable: the consumer test (packing and installing the packages) is skipped")
}

/** The lowest version a peer range allows: `^1.2.3`, `~1.2.3` and `>=1.2.3` give 1.2.3. */
const lowest = (range: string): string => {
  const match = /^(?:\^|~|>=)\s*(\d+\.\d+\.\d+)$/.exec(range.trim())
  if (match === null) throw new Error(`peer range "${range}": only ^x.y.z, ~x.y.z and >=x.y.z are understood`)
  return match[1]!
}

/**
 * Every required peer of the public packages (other than our own) and its
 * range. Optional peers (ioredis, amqplib) stay out: a user who does not use
 * that integration does not install it. Two packages naming the same peer
 * must give it the same range, and the workspace's devDependency must pin
 * it at the range's lowest version (which is what the workspace tests).
 */
const peerRanges = (): Array<readonly [peer: string, range: string]> => {
  const found = new Map<string, string>()
  const ours = new Set(packages.map((dir) => manifest(dir).name))
  for (const dir of packages) {
    const { devDependencies = {}, name, peerDependencies = {}, peerDependenciesMeta = {} } = manifest(dir)
    for (const [peer, range] of Object.entries(peerDependencies)) {
      if (ours.has(peer) || peerDependenciesMeta[peer]?.optional === true) continue
      const pinned = devDependencies[peer]
      if (pinned !== lowest(range)) {
        throw new Error(`${name}: the peer ${peer} (${range}) is pinned at ${pinned ?? "nothing"}, not at ${lowest(range)}`)
      }
      if (found.has(peer) && found.get(peer) !== range) {
        throw new Error(`${peer} has the ranges ${found.get(peer)} and ${range}`)
      }
      found.set(peer, range)
    }
  }
  return [...found].sort(([a], [b]) => a.localeCompare(b))
}

/** The highest of some `x.y.z` versions (pre-releases, which `npm view` lists only when asked for, are left out). */
const newestOf = (versions: ReadonlyArray<string>): string => {
  const released = versions.filter((v) => /^\d+\.\d+\.\d+$/.test(v))
  if (released.length === 0) throw new Error(`no released version among ${versions.join(", ")}`)
  const key = (v: string) => v.split(".").map(Number)
  return [...released].sort((a, b) => {
    const [x, y] = [key(a), key(b)]
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!
  }).at(-1)!
}

/** The version of `name` installed in `project`. */
const installed = (project: string, name: string): string =>
  JSON.parse(fs.readFileSync(path.join(project, "node_modules", name, "package.json"), "utf8")).version as string

const tsconfig = (compilerOptions: Record<string, unknown>) =>
  JSON.stringify(
    {
      compilerOptions: {
        target: "ES2022",
        // DOM: @effect/rpc's declarations name globalThis.Transferable, and
        // skipLibCheck is off so that errors in our own declarations show.
        lib: ["ES2022", "DOM"],
        strict: true,
        skipLibCheck: false,
        types: ["node"],
        ...compilerOptions
      },
      files: ["main.ts"]
    },
    null,
    2
  )

describe.skipIf(!reachable && !ci)("the packed packages in a fresh project", () => {
  it("pack, install with npm, type-check under NodeNext and Bundler, and run with node", async () => {
    expect(reachable, "the npm registry is unreachable (CI=true: the consumer test may not be skipped)").toBe(true)
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "breakwater-consumer-"))
    expect(path.relative(root, work).startsWith("..")).toBe(true)
    try {
      // Pack as publishing would: prepack builds dist afresh (a stale file would be shipped otherwise).
      const tarballs = path.join(work, "tarballs")
      fs.mkdirSync(tarballs)
      for (const dir of packages) fs.rmSync(path.join(root, dir, "dist"), { recursive: true, force: true })
      await pnpm([...packages.flatMap((dir) => ["--filter", manifest(dir).name]), "pack", "--pack-destination", tarballs], root)
      const files = fs.readdirSync(tarballs).filter((file) => file.endsWith(".tgz")).sort()
      expect(files).toStrictEqual(
        packages.map((dir) => {
          const { name, version } = manifest(dir)
          return `${name.replace(/^@/, "").replace("/", "-")}-${version}.tgz`
        }).sort()
      )

      // Each tarball: dist, LICENSE, README.md and package.json, nothing else.
      for (const file of files) {
        const listing = (await ok("tar", ["tzf", path.join(tarballs, file)], work)).split("\n").filter((line) => line !== "")
        const top = new Set(listing.map((entry) => entry.replace(/^package\//, "").split("/")[0]!))
        expect([...top].sort(), file).toStrictEqual([...allowed].sort())
      }

      // The declarations never name another package's internal module (exports blocks it).
      for (const dir of packages) {
        const dist = path.join(root, dir, "dist")
        const declarations = (fs.readdirSync(dist, { recursive: true }) as Array<string>).filter((file) => file.endsWith(".d.ts"))
        for (const file of declarations) {
          const text = fs.readFileSync(path.join(dist, file), "utf8")
          expect(text.match(/["']@[^"'/]+\/[^"'/]+\/internal\/[^"']*["']/g), `${dir}/dist/${file}`).toBeNull()
        }
      }

      // A fresh project, installed from the tarballs and the registry.
      const project = path.join(work, "project")
      fs.mkdirSync(project)
      fs.writeFileSync(
        path.join(project, "package.json"),
        JSON.stringify({ name: "breakwater-consumer", version: "0.0.0", private: true, type: "module" }, null, 2)
      )
      const rootDev = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).devDependencies as Record<string, string>
      await ok(
        "npm",
        [
          "install",
          "--no-audit",
          "--no-fund",
          "--loglevel=error",
          ...files.map((file) => path.join(tarballs, file)),
          ...peerRanges().map(([peer, range]) => `${peer}@${lowest(range)}`),
          `typescript@${rootDev["typescript"]}`,
          `@types/node@${rootDev["@types/node"]}`
        ],
        project,
        420_000
      )

      fs.copyFileSync(path.join(root, "test/consumer/main.ts"), path.join(project, "main.ts"))
      fs.writeFileSync(
        path.join(project, "tsconfig.json"),
        tsconfig({ module: "NodeNext", moduleResolution: "NodeNext", outDir: "out", rootDir: "." })
      )
      fs.writeFileSync(
        path.join(project, "tsconfig.bundler.json"),
        tsconfig({ module: "ESNext", moduleResolution: "Bundler", noEmit: true })
      )
      const tsc = path.join(project, "node_modules/typescript/bin/tsc")
      const check = async (peers: string) => {
        await ok(process.execPath, [tsc, "-p", "tsconfig.bundler.json"], project)
        // Type-checks under NodeNext and emits out/main.js.
        fs.rmSync(path.join(project, "out"), { recursive: true, force: true })
        await ok(process.execPath, [tsc, "-p", "tsconfig.json"], project)
        const { code, stderr, stdout } = await run(process.execPath, ["out/main.js"], project, 120_000)
        expect({ peers, code, stderr }).toStrictEqual({ peers, code: 0, stderr: "" })
        expect(stdout.split("\n"), peers).toStrictEqual([
          "resilience: 12 in stock after 3 attempts",
          "resilience: Retry.layer is a function, a give-up reason is max-attempts",
          "chaos: injected Unavailable",
          "saga: reserve for o-1",
          "saga: charge 30 for o-1",
          "saga: o-1 -> ch-o-1",
          "saga: reserve for o-2",
          "saga: release r-o-2",
          "saga: o-2 -> Declined (over the limit)",
          "saga: o-2 status Compensated",
          "saga: index compensated, completed",
          "http: 7 available",
          "http: ConnectError, sent no",
          "outbox: delivered 1 (m-1)",
          `done on node ${process.versions.node}`,
          ""
        ])
      }
      const ranges = peerRanges()

      // The peers at the lowest version of their ranges (installed above).
      for (const [peer, range] of ranges) expect(installed(project, peer), `${peer} ${range}`).toBe(lowest(range))
      await check("lowest peers")

      // The same project with every peer at the newest version its range allows (asked of the registry,
      // so that npm cannot keep an installed version that already satisfies the range): one more install.
      const newest = await Promise.all(ranges.map(async ([peer, range]) => {
        const versions = [JSON.parse(await ok("npm", ["view", `${peer}@${range}`, "version", "--json"], project, 60_000))]
          .flat() as Array<string>
        return [peer, range, newestOf(versions)] as const
      }))
      await ok(
        "npm",
        ["install", "--no-audit", "--no-fund", "--loglevel=error", ...newest.map(([peer, , version]) => `${peer}@${version}`)],
        project,
        420_000
      )
      for (const [peer, range, version] of newest) expect(installed(project, peer), `${peer} ${range}`).toBe(version)
      const described = newest.map(([peer, range, version]) => `${peer}@${version} (${range})`)
      console.log(`consumer test, newest peers: ${described.join(", ")}`)
      await check(`newest peers: ${described.join(", ")}`)
    } finally {
      for (const dir of packages) fs.rmSync(path.join(root, dir, "dist"), { recursive: true, force: true })
      fs.rmSync(work, { recursive: true, force: true })
    }
  }, 900_000)
})
