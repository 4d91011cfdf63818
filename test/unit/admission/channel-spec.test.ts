import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileChannelSpec, type RouteValues } from '../../../src/admission/channel-spec.js';
import { HttpRequestError, InvalidChannelError } from '../../../src/errors.js';

interface FakeRequest {
  values: RouteValues;
}

const limits = { maxChannelNameLength: 32, maxChannelsPerRequest: 3 };
const fromRequest = (req: FakeRequest): RouteValues => req.values;
const compile = (spec: unknown, given = limits) => compileChannelSpec<FakeRequest, undefined>(spec, fromRequest, given);
const resolve = (spec: unknown, values: RouteValues) => compile(spec)({ values }, undefined);

test('channel spec: fixed names resolve to themselves without reading the route', async () => {
  let read = 0;
  const resolver = compileChannelSpec<FakeRequest, undefined>(
    ['a', 'b:c'],
    () => {
      read++;
      return {};
    },
    limits,
  );
  assert.deepEqual(await resolver({ values: {} }, undefined), ['a', 'b:c']);
  assert.deepEqual(await compile('news')({ values: {} }, undefined), ['news']);
  assert.equal(read, 0);
});

test('channel spec: a function is the resolver itself', () => {
  const fn = (req: FakeRequest): string => String(req.values.params);
  assert.equal(compile(fn), fn);
});

test('channel spec: {param} tokens come from params first, then the query (object or URLSearchParams)', async () => {
  assert.deepEqual(await resolve('room-{id}', { params: { id: '7' }, query: { id: 'no' } }), ['room-7']);
  assert.deepEqual(await resolve('room-{id}', { query: { id: '8' } }), ['room-8']);
  assert.deepEqual(
    await resolve(['user/{user}', 'team/{team}:{user}'], { params: { user: 'u1' }, query: new URLSearchParams('team=t9') }),
    ['user/u1', 'team/t9:u1'],
  );
  const fromAsync = compileChannelSpec<FakeRequest, { params: Promise<{ id: string }> }>(
    '{id}',
    async (_req, context) => ({ params: await context.params }),
    limits,
  );
  assert.deepEqual(await fromAsync({ values: {} }, { params: Promise.resolve({ id: 'next' }) }), ['next']);
});

test('channel spec: a missing, empty or repeated parameter is a 400 naming it', async () => {
  const refusal = async (values: RouteValues, message: RegExp): Promise<void> => {
    await assert.rejects(
      async () => resolve('room-{id}', values),
      (error: unknown) => {
        assert.ok(error instanceof HttpRequestError);
        assert.equal(error.status, 400);
        assert.match(error.message, message);
        return true;
      },
    );
  };
  await refusal({}, /Missing route parameter "id"/);
  await refusal({ params: { id: '' } }, /Missing route parameter "id"/);
  await refusal({ query: new URLSearchParams('id=1&id=2') }, /Route parameter "id" must be a single value/);
  await refusal({ query: { id: ['1', '2'] } }, /must be a single value/);
  // Inherited properties are not route values.
  await refusal({ params: Object.create({ id: 'proto' }) as object }, /Missing route parameter "id"/);
});

test('channel spec: specs that can only make refused names throw InvalidChannelError when the route is made', () => {
  const refused: Array<[unknown, RegExp]> = [
    ['my room', /contains a character outside/],
    ['', /channel name is empty/],
    ['x'.repeat(33), /longer than 32 characters/],
    ['{room', /malformed template/],
    ['room}', /malformed template/],
    ['{1abc}', /malformed template/],
    ['a b-{id}', /the text around the parameters may only contain/],
    [`${'x'.repeat(31)}{a}{b}`, /every name it makes is longer than 32 characters/],
    [[], /needs at least one channel/],
    [['a', 7], /takes channel names as strings, got number/],
    [['a', 'b', 'c', 'd'], /names 4 channels; a request may listen to at most 3/],
    [42, /got number/],
    [null, /got null/],
    [{ name: 'a' }, /got object/],
  ];
  for (const [spec, message] of refused) {
    assert.throws(
      () => compile(spec),
      (error: unknown) => error instanceof InvalidChannelError && message.test(error.message),
      String(spec),
    );
  }
});

test('channel spec: the channel limit counts distinct names, and a template of exactly the length limit is fine', async () => {
  assert.deepEqual(await compile(['a', 'a', 'b', 'c', 'c'])({ values: {} }, undefined), ['a', 'a', 'b', 'c', 'c']);
  assert.deepEqual(await resolve(`${'x'.repeat(31)}{a}`, { params: { a: 'y' } }), [`${'x'.repeat(31)}y`]);
});
