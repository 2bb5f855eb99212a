// SPDX-License-Identifier: Apache-2.0
/* Linked only into the fully static weir-operator (operator/CMakeLists.txt,
 * WEIR_OPERATOR_STATIC), whose librdkafka is built without Cyrus SASL
 * (ci/build-rdkafka-min.sh). op_topic.c tells Cyrus not to load plugins
 * before librdkafka's first client; with no Cyrus linked there is nothing to
 * configure, and Debian's libsasl2.a would bring every plugin, LDAP and
 * dlopen for this one call. */
#include <sasl/sasl.h>

/** Cyrus' plugin path setter, for a build without Cyrus: nothing to set. */
int sasl_set_path(int path_type, char *path)
{
    (void)path_type;
    (void)path;
    return SASL_OK;
}
