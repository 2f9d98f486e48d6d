// Checks the test harness's Upstash REST front against the official client,
// @upstash/redis, with and without the base64 response encoding.
//
// Usage: node conformance.mjs   (with UPSTASH_URL, UPSTASH_TOKEN and SDK_DIR, the
// folder whose node_modules holds @upstash/redis). Exits non-zero on the first
// mismatch; prints one line per encoding and the number of checks.
import assert from "node:assert/strict";
import { createRequire } from "node:module";

const require = createRequire(`${process.env.SDK_DIR}/`);
const { Redis } = require("@upstash/redis");

const url = process.env.UPSTASH_URL;
const token = process.env.UPSTASH_TOKEN;
let checks = 0;
const check = (actual, expected, what) => {
  assert.deepEqual(actual, expected, what);
  checks += 1;
};

async function suite(label, options) {
  const redis = new Redis({ url, token, ...options });
  const p = `sdk:${label}:`;

  // Strings with unicode, both ways.
  const text = "héllo wörld ✓ 日本語 🎉 \"quoted\" \\ back";
  check(await redis.set(`${p}unicode`, text), "OK", "set answers OK");
  check(await redis.get(`${p}unicode`), text, "unicode round trip");
  check(await redis.get(`${p}missing`), null, "a missing key is null");

  // Integers.
  check(await redis.incr(`${p}n`), 1, "incr");
  check(await redis.incrby(`${p}n`, 41), 42, "incrby");
  check(await redis.get(`${p}n`), 42, "an integer string reads back as a number");

  // Objects are JSON text under the key.
  check(await redis.set(`${p}json`, { tenant: "acmé", n: 3 }), "OK", "set an object");
  check(await redis.get(`${p}json`), { tenant: "acmé", n: 3 }, "object round trip");

  // del
  check(await redis.del(`${p}n`, `${p}json`, `${p}missing`), 2, "del counts removed keys");
  check(await redis.exists(`${p}n`), 0, "deleted");

  // Hashes.
  check(await redis.hset(`${p}h`, { a: "alpha", b: "βeta" }), 2, "hset");
  check(await redis.hget(`${p}h`, "b"), "βeta", "hget");
  check(await redis.hgetall(`${p}h`), { a: "alpha", b: "βeta" }, "hgetall");

  // Expiry.
  check(await redis.expire(`${p}unicode`, 100), 1, "expire");
  const ttl = await redis.ttl(`${p}unicode`);
  assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
  checks += 1;
  check(await redis.ttl(`${p}missing`), -2, "ttl of a missing key");
  check(await redis.set(`${p}px`, "v", { px: 60000 }), "OK", "set with px");
  const pttl = await redis.pttl(`${p}px`);
  assert.ok(pttl > 50000 && pttl <= 60000, `pttl ${pttl}`);
  checks += 1;

  // Scripts: eval, and evalsha of a loaded script.
  check(
    await redis.eval("return {KEYS[1], ARGV[1], 7}", [`${p}k`], ["v✓"]),
    [`${p}k`, "v✓", 7],
    "eval",
  );
  const sha = await redis.scriptLoad("return tonumber(ARGV[1]) * 2");
  check(await redis.evalsha(sha, [], ["21"]), 42, "evalsha");
  await assert.rejects(
    redis.evalsha("0000000000000000000000000000000000000000", [], []),
    /NOSCRIPT/,
    "an unknown script is NOSCRIPT",
  );
  checks += 1;

  // A command error is an error.
  await assert.rejects(redis.incr(`${p}h`), /WRONGTYPE/, "a refused command rejects");
  checks += 1;

  // A pipeline with an error inside: the others still run, in order.
  const pipe = redis.pipeline();
  pipe.set(`${p}a`, "1");
  pipe.incr(`${p}h`);
  pipe.incr(`${p}a`);
  pipe.get(`${p}unicode`);
  const results = await pipe.exec({ keepErrors: true });
  check(results.length, 4, "one result per command");
  check(results[0].result, "OK", "pipeline set");
  assert.match(results[1].error, /WRONGTYPE/);
  checks += 1;
  check(results[2].result, 2, "the command after the error ran");
  check(results[3].result, text, "pipeline get decodes unicode");
  await assert.rejects(
    redis.pipeline().set(`${p}b`, "x").incr(`${p}h`).exec(),
    /WRONGTYPE/,
    "exec without keepErrors rejects",
  );
  checks += 1;
  check(await redis.get(`${p}b`), "x", "a pipeline is not atomic");

  // multi-exec: atomic.
  const tx = redis.multi();
  tx.set(`${p}t`, "5");
  tx.incrby(`${p}t`, 5);
  tx.get(`${p}t`);
  check(await tx.exec(), ["OK", 10, 10], "multi-exec");

  // The token is checked.
  const intruder = new Redis({ url, token: `${token}-wrong`, ...options });
  await assert.rejects(intruder.get(`${p}a`), /Unauthorized|401/, "a wrong token is refused");
  checks += 1;

  // A key written here for the Rust side to read with cacheward.
  await redis.set(`copilot:sdk:${label}`, { written_by: "@upstash/redis", label });
  console.log(`${label}: ok`);
}

await suite("base64", {});
await suite("plain", { responseEncoding: false });
console.log(`conformance: all ${checks} checks agree`);
