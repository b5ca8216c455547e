/**
 * The service's HTTP API: its groups.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import { AdminApi } from "./admin/Api.js"
import { OrdersApi } from "./orders/Api.js"

export class Api extends HttpApi.make("orders-service").add(OrdersApi).add(AdminApi) {}
