/* test_config.c - the 2B / 9B / 27B presets against GEMMA2.md section 1 (parameter counts are
 * exact integers: any wrong width, head count or FFN size changes them), their KV-cache sizes,
 * and config.json parsing of the same shapes. */
#include <string.h>

#include "gemma2.h"
#include "harness.h"
#include "model/config.h"

static void test_presets(void) {
    static const struct {
        const char *name;
        int64_t params;
        float qscale;
    } want[] = {{"2b", 2614341888LL, 256}, {"gemma2-9b", 9241705984LL, 256}, {"27b", 27227128320LL, 144}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        gemma2_config c;
        CHECK(g2_config_preset(want[i].name, &c), "%s", want[i].name);
        CHECK(g2_config_param_count(&c) == want[i].params, "%s: %lld parameters", want[i].name,
              (long long)g2_config_param_count(&c));
        CHECK(c.query_pre_attn_scalar == want[i].qscale, "%s", want[i].name);
        CHECK(g2_config_validate(&c, want[i].name, NULL) == GEMMA2_OK, "%s", want[i].name);
    }
    gemma2_config c;
    CHECK(!g2_config_preset("7b", &c));
}

/* 2B at 8192 positions: 13 global layers x 8192 + 13 local x 4096 positions, K and V, 4 kv heads
 * x 256 floats: 1,308,622,848 bytes (1,744,830,464 without the rings). */
static void test_kv_bytes_2b(void) {
    gemma2_config c;
    CHECK(g2_config_preset("2b", &c));
    CHECK(gemma2_kv_cache_bytes(&c, 8192) == 1308622848u);
    c.sliding_window = 8192;
    CHECK(gemma2_kv_cache_bytes(&c, 8192) == 1744830464u);
}

/* config.json written for a preset reads back as the same config. */
static void test_json_round_trip(void) {
    gemma2_config c, back;
    CHECK(g2_config_preset("27b", &c));
    char *json = g2_config_to_json(&c, "bfloat16");
    CHECK(json != NULL);
    if (!json) return;
    gemma2_error err;
    CHECK(g2_config_from_json("27b/config.json", json, &back, &err) == GEMMA2_OK, "%s", err.msg);
    CHECK(memcmp(&c, &back, sizeof c) == 0, "round trip changed the config");
    free(json);
}

int main(void) {
    RUN(test_presets);
    RUN(test_kv_bytes_2b);
    RUN(test_json_round_trip);
    HARNESS_END();
}
