// A metav1.LabelSelector applied to labels, as kube-apiserver applies a webhook's
// namespaceSelector and objectSelector. Pure.
import { isObject } from './json.js';
import type { StringMap } from './types.js';

/** Whether `labels` match `selector`; an absent or empty selector matches everything. */
export function matchesLabelSelector(selector: unknown, labels: Readonly<StringMap>): boolean {
  if (!isObject(selector)) return true;
  const has = (key: string) => Object.hasOwn(labels, key);
  if (isObject(selector.matchLabels))
    for (const [key, value] of Object.entries(selector.matchLabels))
      if (!has(key) || labels[key] !== value) return false;
  const expressions = Array.isArray(selector.matchExpressions) ? selector.matchExpressions : [];
  for (const expression of expressions) {
    if (!isObject(expression) || typeof expression.key !== 'string') return false;
    const { key, operator } = expression;
    const values = Array.isArray(expression.values) ? expression.values : [];
    const matched =
      operator === 'In'
        ? has(key) && values.includes(labels[key])
        : operator === 'NotIn'
          ? !has(key) || !values.includes(labels[key])
          : operator === 'Exists'
            ? has(key)
            : operator === 'DoesNotExist'
              ? !has(key)
              : false;
    if (!matched) return false;
  }
  return true;
}
