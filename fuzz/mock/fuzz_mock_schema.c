/* fuzz_mock_schema.c — libFuzzer target for the mock's structured output
 * and embeddings: the input as a JSON Schema must give an instance that is
 * valid JSON (any schema, however deep or self-referring, ends), and the
 * input as an embeddings request must answer 200 or 400 with JSON. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>

#include "mock/mock_engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *schema = cJSON_ParseWithLength((const char *)data, size);
    buf b;
    buf_init(&b);
    if (schema) {
        mock_schema_instance(schema, &b);
        cJSON *j = cJSON_ParseWithLength(b.data, b.len);
        if (!j) abort();
        cJSON_Delete(j);
        cJSON_Delete(schema);
    }
    b.len = 0;
    int64_t tok;
    int st = mock_embeddings((const char *)data, size, &b, &tok);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    if ((st != 200 && st != 400) || !j) abort();
    cJSON_Delete(j);
    buf_free(&b);
    return 0;
}
