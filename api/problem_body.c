/*
 * api/problem_body.c — the text of a problem document (problem_body.h).
 */
#include "api/problem_body.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gan/json_text.h"

char *api_problem_body(unsigned status, const char *title, const char *type, const char *field,
                       const char *detail, const char *instance)
{
    enum { TYPE, TITLE, DETAIL, FIELD, INSTANCE, N };
    const char *in[N] = {type, title, detail, field && field[0] ? field : NULL, instance};
    char *s[N] = {0};
    bool ok = true;
    for (int i = 0; i < N; i++)
        if (in[i] && !(s[i] = gan_utf8_dup(in[i])))
            ok = false;
    cJSON *o = ok ? cJSON_CreateObject() : NULL;
    char *json = NULL;
    if (o && cJSON_AddStringToObject(o, "type", s[TYPE] ? s[TYPE] : "about:blank") &&
        cJSON_AddStringToObject(o, "title", s[TITLE] ? s[TITLE] : "") &&
        cJSON_AddNumberToObject(o, "status", status) &&
        cJSON_AddStringToObject(o, "detail", s[DETAIL] ? s[DETAIL] : "") &&
        (!s[FIELD] || cJSON_AddStringToObject(o, "field", s[FIELD])) &&
        cJSON_AddStringToObject(o, "instance", s[INSTANCE] ? s[INSTANCE] : ""))
        json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    for (int i = 0; i < N; i++)
        free(s[i]);
    return json;
}
