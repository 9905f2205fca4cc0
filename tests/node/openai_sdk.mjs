// OpenAI's official Node SDK against bitnet-server: chat.completions.create and
// completions.create, buffered and streamed, greedy. Prints one JSON object with the four
// texts (and the finish reasons) for the C test to compare with bitnet-run's.
// usage: node openai_sdk.mjs <node_modules dir> <baseURL> <apiKey> <maxTokens>
import { createRequire } from 'node:module';
import path from 'node:path';

const [modules, baseURL, apiKey, maxTokens] = process.argv.slice(2);
const require = createRequire(path.join(modules, 'x.js'));
const OpenAI = require('openai').default ?? require('openai');
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
const n = Number(maxTokens);
const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hello' },
];
const prompt = 'The capital of France is';
const out = {};

const chat = await client.chat.completions.create({
  model: 'tiny', messages, max_tokens: n, temperature: 0,
});
out.chat = chat.choices[0].message.content;
out.chat_finish = chat.choices[0].finish_reason;
out.chat_object = chat.object;
out.chat_usage = chat.usage.completion_tokens;

let text = '';
let finish = null;
let usage = null;
const chatStream = await client.chat.completions.create({
  model: 'tiny', messages, max_tokens: n, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of chatStream) {
  if (chunk.usage) usage = chunk.usage.completion_tokens;
  const c = chunk.choices[0];
  if (!c) continue;
  text += c.delta.content ?? '';
  if (c.finish_reason) finish = c.finish_reason;
}
out.chat_stream = text;
out.chat_stream_finish = finish;
out.chat_stream_usage = usage;

const comp = await client.completions.create({
  model: 'tiny', prompt, max_tokens: n, temperature: 0,
});
out.completion = comp.choices[0].text;
out.completion_object = comp.object;

text = '';
const compStream = await client.completions.create({
  model: 'tiny', prompt, max_tokens: n, temperature: 0, stream: true,
});
for await (const chunk of compStream) text += chunk.choices[0]?.text ?? '';
out.completion_stream = text;

// an error answer reaches the SDK as its typed error with our status
try {
  await client.chat.completions.create({ model: 'tiny', messages, n: 2 });
  out.error_status = 0;
} catch (e) {
  out.error_status = e.status;
}
const models = await client.models.list();
out.model_ids = models.data.map((m) => m.id);

console.log(JSON.stringify(out));
