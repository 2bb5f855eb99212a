#!/bin/sh
# Test exec credential plugin: prints an ExecCredential whose token is
# $EXEC_TOKEN (default "exec-token"), with $EXEC_EXPIRY as expiry if set, and
# appends a line to $EXEC_COUNT_FILE on every run. Fails with $EXEC_FAIL.
[ -n "$EXEC_COUNT_FILE" ] && echo "$*|$EXEC_GREETING" >>"$EXEC_COUNT_FILE"
[ -n "$EXEC_FAIL" ] && { echo "plugin failure requested" >&2; exit 3; }
case "$KUBERNETES_EXEC_INFO" in
*'"kind":"ExecCredential"'*) ;;
*) echo "KUBERNETES_EXEC_INFO missing" >&2; exit 4 ;;
esac
exp=""
[ -n "$EXEC_EXPIRY" ] && exp=",\"expirationTimestamp\":\"$EXEC_EXPIRY\""
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"%s}}\n' "${EXEC_TOKEN:-exec-token}" "$exp"
