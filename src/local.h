/* local.h - the routes the gateway answers itself (ROUTE_KIND_LOCAL in
 * route.h): GET/HEAD /healthz (200 {"status":"ok"}), /readyz (200
 * {"status":"ready"}, or 503 {"status":"draining"} while the gateway
 * drains) and /metrics (the Prometheus page of stats.h). The server has
 * routed and checked the method; these answer even while draining. */
#ifndef WAGATE_LOCAL_H
#define WAGATE_LOCAL_H

struct exchange;

/* Answers ex (a local route) through exchange.h: ex is freed. */
void local_answer(struct exchange *ex);

#endif
