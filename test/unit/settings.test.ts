// Booleans as the README's Configure section states them: `true` or `false` in any case, spaces
// around ignored (as kubectl and Go's flag parsing would lead a user to write them); anything else
// stops nri at start naming the variable.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSettings } from '../../functions/config/settings.js';

describe('boolean settings', () => {
  it('take true and false in any case, with spaces around', () => {
    for (const [value, expected] of [
      ['true', true],
      ['TRUE', true],
      [' True ', true],
      ['false', false],
      ['FALSE', false],
      [' False', false],
    ] as const) {
      const parsed = parseSettings({ NRI_INJECT_HUGEPAGE_DOWN_API: value });
      assert.ok(parsed.ok, `${JSON.stringify(value)}: ${parsed.ok ? '' : parsed.error}`);
      assert.equal(parsed.value.envSwitches.hugePageDownApi, expected, JSON.stringify(value));
    }
  });

  it('refuse anything else, naming the variable', () => {
    for (const value of ['yes', '1', 'on', 't', 'truee']) {
      const parsed = parseSettings({ NRI_INJECT_HUGEPAGE_DOWN_API: value });
      assert.ok(!parsed.ok, value);
      assert.match(parsed.error, /^NRI_INJECT_HUGEPAGE_DOWN_API=.* must be true or false/);
    }
  });

  it('leave an unset or empty variable at its default', () => {
    for (const env of [{}, { NRI_INJECT_HUGEPAGE_DOWN_API: '' }, { NRI_INJECT_HUGEPAGE_DOWN_API: '  ' }]) {
      const parsed = parseSettings(env);
      assert.ok(parsed.ok);
      assert.equal(parsed.value.envSwitches.hugePageDownApi, false);
    }
  });
});
