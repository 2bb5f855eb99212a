/* SPDX-License-Identifier: Apache-2.0 */
/* Keeps a static library non-empty while its module list is short. */
typedef int wc__empty_translation_unit;
