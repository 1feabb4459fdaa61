// LangChain.js RemoteRunnable (@langchain/core 0.3.x) against the service, as a TypeScript/JavaScript app calls it:
// /search, /chat (text) and /assistant (the listings first, then the checked text; streamEvents shows the retriever).
// Run by tests/clients/test_js_client.py with SKYMARKET_URL and SKYMARKET_KEY set; prints one JSON object:
// {scenario: {ok, value} | {ok: false, error}}, which the Python test checks.
import { RemoteRunnable } from "@langchain/core/runnables/remote";

const base = process.env.SKYMARKET_URL;
const key = process.env.SKYMARKET_KEY;
const ASK = { messages: [{ role: "user", content: "Who inspects roofs in Troy?" }] };
const BLOCKED = { messages: [{ role: "user", content: process.env.INJECTION }] };

const remote = (route, headers = { Authorization: `Bearer ${key}` }) =>
  new RemoteRunnable({ url: `${base}/${route}`, options: { timeout: 60000, headers } });

const results = {};
async function scenario(name, fn) {
  try {
    results[name] = { ok: true, value: await fn() };
  } catch (e) {
    results[name] = { ok: false, error: String(e?.message ?? e) };
  }
}

async function collect(iterable, pick = (x) => x) {
  const out = [];
  for await (const item of await iterable) out.push(pick(item));
  return out;
}

const chat = remote("chat");
const assistant = remote("assistant");
await scenario("invoke_search", () => remote("search").invoke({ query: "roof inspection near Troy", limit: 3 }));
await scenario("stream_chat", () => collect(chat.stream(ASK)));
// LangChain.js revives any object with a `text` key as a StringPromptValue (its TODO waits on LangServe): the
// listings come in the stream's first chunk, each piece of text as a StringPromptValue's `.value`.
await scenario("stream_assistant", () =>
  collect(assistant.stream(ASK), (c) =>
    c.listings ? { listings: c.listings } : c.flags ? { flags: c.flags } : { text: c.value ?? c.text ?? null },
  ),
);
await scenario("stream_events_assistant", () =>
  collect(assistant.streamEvents(ASK, { version: "v2" }), (e) => ({
    event: e.event,
    name: e.name,
    ids: e.event === "on_retriever_end" ? (e.data?.output ?? []).map((d) => d.metadata?.id) : null,
    text:
      e.event === "on_chain_stream" ? e.data?.chunk?.value ?? e.data?.chunk?.text ?? null : null,
  })),
);
await scenario("blocked_invoke", () => chat.invoke(BLOCKED));
await scenario("blocked_stream", () => collect(chat.stream(BLOCKED)));
await scenario("blocked_stream_events", () => collect(chat.streamEvents(BLOCKED, { version: "v2" })));
await scenario("no_key", () => remote("search", {}).invoke({ query: "roof inspection near Troy" }));

console.log(JSON.stringify(results));
