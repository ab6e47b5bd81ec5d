/* api_alerts.c - alerts: GET /v1/alerts, GET /v1/alerts/{id}, ack and resolve */
#include "aupd/api.h"

void
api_metrics_alerts(struct strbuf *sb, struct app *app)
{
}
