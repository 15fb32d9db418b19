"""The admin dashboard's site: Django's admin with the lineage pages mltrace's UI had.

Besides the model pages (api/admin/: components, runs, pointers, tags, accepted writes,
django-q's tasks) the index links to Trace (an output's lineage), Review (flagged outputs and
the runs behind them) and Recent (the newest runs), and to Monitor (monitored tasks, their metrics and a task's
metrics charted over time), which live here with the helpers that build them. Every page answers in a bounded number of queries at a million runs.

The site lives outside api/admin/ on purpose: Django imports it (AdminConfig.default_site)
the first time anything touches admin.site, and api/admin/ registers its admins on admin.site
as it is imported, so a site inside that package would be built twice and lose them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from common.errors import MltraceError

if TYPE_CHECKING:  # the models load after this module: its reads import them when called
    from monitoring.selectors import Bucket

RECENT_PAGE = 50
POINTERS_SHOWN = 20
# Runs a Trace or Review page lists; the API streams whole traces of any size.
RUNS_SHOWN = 500
# Runs drawn on each side of the Trace page's graph, nearest first; the rest are counted.
GRAPH_RUNS_SHOWN = 500
DIRECTIONS = ("upstream", "downstream", "both")
# Tasks a Monitor page lists; ?after=<name> pages on.
TASKS_PAGE = 50
# The window of the metrics the Monitor pages show: each task's latest pairs.
MONITOR_WINDOW_PAIRS = 1000
# A task's charts: the range back from now (GET range) and the bucket (GET bucket).
MONITOR_RANGES = {
    "hour": ("last hour", dt.timedelta(hours=1)),
    "day": ("last day", dt.timedelta(days=1)),
    "week": ("last week", dt.timedelta(days=7)),
    "30d": ("last 30 days", dt.timedelta(days=30)),
}
MONITOR_BUCKETS: tuple[Bucket, ...] = ("minute", "hour", "day")
DEFAULT_RANGE = "day"
DEFAULT_BUCKET: Bucket = "hour"
# Metrics the task page shows beside the series ones (over the window, not per bucket).
WINDOW_ONLY_METRICS = ("roc_auc", "median_absolute_error", "mutual_info_score")


def metric_cell(name: str, value: Any) -> dict[str, Any]:
    """A metric as a table cell shows it: 4 significant digits, or a dash and the reason."""
    if value.value is None:
        return {"name": name, "text": "\u2014", "reason": value.reason, "value": None}
    return {"name": name, "text": f"{value.value:.4g}", "reason": None, "value": value.value}


def task_row(task: Any) -> dict[str, Any]:
    """A task's counts and the share of its outputs that have feedback (None without outputs)."""
    share = task.pair_count / task.output_count if task.output_count else None
    return {
        "name": task.name,
        "outputs": task.output_count,
        "feedback": task.feedback_count,
        "pairs": task.pair_count,
        "share": share,
        "share_text": "\u2014" if share is None else f"{share:.1%}",
        "last_output_at": task.last_output_at,
    }


def monitor_chart(buckets: list[tuple[dt.datetime, Any]], metrics: tuple[str, ...]) -> dict[str, Any]:
    """The task page's chart data: bucket starts (epoch seconds), pairs per bucket, and each
    metric per bucket (null where undefined); a metric undefined in every bucket is left out,
    with the reason of its latest bucket."""
    from monitoring.metrics import from_sums

    drawn, left_out = [], []
    for name in metrics:
        values = [from_sums(name, sums) for _, sums in buckets]
        if any(v.value is not None for v in values):
            drawn.append({"name": name, "values": [v.value for v in values]})
        else:
            left_out.append({"name": name, "reason": values[-1].reason if values else None})
    return {
        "t": [int(at.timestamp()) for at, _ in buckets],
        "pairs": [sums.n for _, sums in buckets],
        "metrics": drawn,
        "left_out": left_out,
    }


def trace_graph(
    output_id: str, plan: Any, downstream: Any, bodies: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The Trace page's graph: the output, the runs upstream of it (from a TracePlan) and
    downstream (an ImpactPage and the total), at most GRAPH_RUNS_SHOWN each, nearest first.

    Edges go from a dependency to the run that depends on it (data flows left to right),
    every one between two drawn runs; the output sits between its producer and its readers.
    bodies: the API body of every run drawn.
    """
    output = f"output:{output_id}"
    sides: dict[int, str] = {}
    edges: set[tuple[str, str]] = set()
    left_out = {"upstream": 0, "downstream": 0}
    if plan is not None:
        nearest = sorted(plan.order, key=lambda run_id: (plan.depths[run_id], run_id))
        shown = set(nearest[:GRAPH_RUNS_SHOWN])
        left_out["upstream"] = len(nearest) - len(shown)
        for run_id in shown:
            sides[run_id] = "root" if run_id == plan.root else "upstream"
            edges.update(
                (f"run:{dep}", f"run:{run_id}") for dep in plan.edges.get(run_id, ()) if dep in shown
            )
        edges.add((f"run:{plan.root}", output))
    if downstream is not None:
        page, total = downstream
        left_out["downstream"] = total - len(page.nodes)
        for run_id, hops in page.nodes:
            sides.setdefault(run_id, "downstream")
            if hops == 1:
                edges.add((output, f"run:{run_id}"))
        drawn = {run_id for run_id, _ in page.nodes}
        edges.update((f"run:{dep}", f"run:{run_id}") for run_id, dep in page.edges if dep in drawn)
    nodes: list[dict[str, Any]] = [{"id": output, "kind": "output", "name": output_id}]
    for run_id in sorted(sides):
        body = bodies[run_id]
        nodes.append(
            {
                "id": f"run:{run_id}",
                "kind": "run",
                "side": sides[run_id],
                "run": run_id,
                "component": body["component"],
                "start": body["start_timestamp"],
                "stale": bool(body["stale"]),
                "flagged": any(p["flag"] for p in body["outputs"]),
                "inputs": [{"name": p["name"], "flag": p["flag"]} for p in body["inputs"][:POINTERS_SHOWN]],
                "outputs": [{"name": p["name"], "flag": p["flag"]} for p in body["outputs"][:POINTERS_SHOWN]],
                "url": reverse("admin:runs_run_change", args=[run_id]),
            }
        )
    return {
        "nodes": nodes,
        "edges": [{"source": a, "target": b} for a, b in sorted(edges)],
        "left_out": left_out,
    }


def pointer_summary(pointers: list[dict[str, Any]]) -> dict[str, Any]:
    """The first POINTERS_SHOWN of a run's pointers, and how many more it has."""
    return {"shown": pointers[:POINTERS_SHOWN], "more": max(0, len(pointers) - POINTERS_SHOWN)}


class MltraceAdminSite(admin.AdminSite):
    site_header = "mltrace"
    site_title = "mltrace"
    index_title = "Pipelines, runs and lineage"
    index_template = "admin/mltrace_index.html"

    def get_urls(self) -> list[Any]:
        return [
            path("lineage/trace/", self.admin_view(self.trace_view), name="mltrace-trace"),
            path("lineage/review/", self.admin_view(self.review_view), name="mltrace-review"),
            path("lineage/recent/", self.admin_view(self.recent_view), name="mltrace-recent"),
            path("lineage/flag/", self.admin_view(self.flag_view), name="mltrace-flag"),
            path("monitor/", self.admin_view(self.monitor_view), name="mltrace-monitor"),
            path("monitor/<str:task>/", self.admin_view(self.monitor_task_view), name="mltrace-monitor-task"),
            path(
                "monitor/<str:task>/flag/",
                self.admin_view(self.monitor_flag_view),
                name="mltrace-monitor-flag",
            ),
            *super().get_urls(),
        ]

    def page(self, request: HttpRequest, template: str, title: str, **context: Any) -> TemplateResponse:
        return TemplateResponse(request, template, {**self.each_context(request), "title": title, **context})

    def trace_view(self, request: HttpRequest) -> HttpResponse:
        """The lineage of an output drawn as a graph, upstream, downstream or both, with the
        indented lists below it (the fallback for traces too large to draw)."""
        from runs import lineage
        from runs.selectors import run_body_pairs

        output_id = request.GET.get("output_id", "")
        direction = request.GET.get("direction", "upstream")
        if direction not in DIRECTIONS:
            direction = "upstream"
        trace, impact, graph = None, None, None
        plan, downstream, errors = None, None, []
        if output_id and direction in ("upstream", "both"):
            try:
                plan = lineage.trace_plan(output_id=output_id)
            except MltraceError as exc:  # no run output it: a raw input, say
                errors.append(exc.message)
        if output_id and direction in ("downstream", "both"):
            try:
                seeds = lineage.impact_seeds_of_output(output_id)
            except MltraceError as exc:
                errors.append(exc.message)
            else:
                page = lineage.impact_page(
                    seeds=seeds, from_pointers=True, depth=None, after=None, limit=GRAPH_RUNS_SHOWN
                )
                downstream = (page, lineage.impact_count(seeds=seeds, from_pointers=True))
        error = errors[0] if errors and plan is None and downstream is None else None
        # Bodies read once for the graph and the lists: upstream with the trace's edges known.
        bodies: dict[int, dict[str, Any]] = {}
        if plan is not None:
            nearest = sorted(plan.order, key=lambda run_id: (plan.depths[run_id], run_id))
            wanted = list(dict.fromkeys([*plan.order[:RUNS_SHOWN], *nearest[:GRAPH_RUNS_SHOWN]]))
            bodies.update(run_body_pairs(wanted, known_dependencies=plan.edges))
        if downstream is not None:
            bodies.update(run_body_pairs([i for i, _ in downstream[0].nodes if i not in bodies]))
        if plan is not None or downstream is not None:
            graph = trace_graph(output_id, plan, downstream, bodies)
        if downstream is not None:
            page, total = downstream
            impact = {
                "total": total,
                "more": total - len(page.nodes),
                "outputs": page.outputs,
                "nodes": [
                    {
                        "run": bodies[run_id],
                        "depth": hops,
                        "indent": (hops - 1) * 24,
                        "outputs": pointer_summary(bodies[run_id]["outputs"]),
                    }
                    for run_id, hops in page.nodes
                ],
            }
        if plan is not None:
            shown = plan.order[:RUNS_SHOWN]
            trace = {
                "output_id": output_id,
                "root": plan.root,
                "upstream": len(plan.order) - 1,
                "more": len(plan.order) - len(shown),
                "nodes": [
                    {
                        "run": bodies[run_id],
                        "depth": plan.depths[run_id],
                        "indent": plan.depths[run_id] * 24,
                        "outputs": pointer_summary(bodies[run_id]["outputs"]),
                    }
                    for run_id in shown
                ],
            }
        return self.page(
            request,
            "admin/mltrace/trace.html",
            "Trace",
            output_id=output_id,
            direction=direction,
            directions=DIRECTIONS,
            trace=trace,
            impact=impact,
            graph=graph,
            error=error,
        )

    def review_view(self, request: HttpRequest) -> HttpResponse:
        """Flagged outputs, and the runs in their traces ranked by how many they share."""
        from runs import lineage
        from runs.selectors import run_body_pairs

        plan = lineage.review_plan()
        shown = plan.ranked[:RUNS_SHOWN]
        counts = dict(shown)
        review = {
            "flagged": plan.flagged,
            "runs": [{"run": run, "count": counts[i]} for i, run in run_body_pairs([i for i, _ in shown])],
            "more": len(plan.ranked) - len(shown),
        }
        return self.page(request, "admin/mltrace/review.html", "Review flagged outputs", review=review)

    def recent_view(self, request: HttpRequest) -> HttpResponse:
        """The newest runs across components, paging back with ?before=<run id>."""
        from runs.models import Run
        from runs.selectors import run_bodies, run_page

        before = None
        if request.GET.get("before", "").isdigit():
            before = Run.objects.filter(id=int(request.GET["before"])).first()
        page = run_page(before=before, limit=RECENT_PAGE)
        runs = run_bodies([run.id for run in page.runs])
        for run in runs:
            run["outputs_summary"] = pointer_summary(run["outputs"])
        older = f"?before={page.runs[-1].id}" if page.has_more and page.runs else None
        return self.page(request, "admin/mltrace/recent.html", "Recent runs", runs=runs, older=older)

    def flag_view(self, request: HttpRequest) -> HttpResponse:
        """POST output_id and action (flag or unflag); back to where the form was."""
        from runs.services import pointers_flag

        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("admin:mltrace-review")
        if request.method != "POST":
            return HttpResponseRedirect(back)
        if not request.user.has_perm("runs.change_iopointer"):
            messages.error(request, "You may not flag outputs.")
            return HttpResponseRedirect(back)
        output_id = request.POST.get("output_id", "")
        flag = request.POST.get("action") != "unflag"
        try:
            count = pointers_flag(name=output_id, flag=flag)
        except MltraceError as exc:
            messages.error(request, exc.message)
        else:
            verb = "Flagged" if flag else "Unflagged"
            messages.success(request, f"{verb} {output_id} ({count} pointer{'s' if count != 1 else ''}).")
        return HttpResponseRedirect(back)

    def monitor_flag_view(self, request: HttpRequest, task: str) -> HttpResponse:
        """POST disagreement (mismatch, or threshold with its value) and window_pairs: flags the
        outputs of the task's latest pairs whose feedback disagrees, as
        POST /api/v1/tasks/{task}/flag/ does; back to the task's page with what it did."""
        import math

        from monitoring.models import Task
        from monitoring.selectors import Disagreement, Window, disagreeing_identifiers
        from runs.services import pointers_flag_names

        back = reverse("admin:mltrace-monitor-task", args=[task])
        found = Task.objects.filter(name=task).first()
        if found is None:
            raise Http404(f"Unknown task: {task}.")
        if request.method != "POST":
            return HttpResponseRedirect(back)
        if not request.user.has_perm("runs.change_iopointer"):
            messages.error(request, "You may not flag outputs.")
            return HttpResponseRedirect(back)
        try:
            pairs = int(request.POST.get("window_pairs", MONITOR_WINDOW_PAIRS))
            threshold = float(request.POST.get("threshold") or 0)
        except ValueError:
            messages.error(request, "The window is a whole number of pairs and the threshold a number.")
            return HttpResponseRedirect(back)
        if not 1 <= pairs <= 10_000_000 or not math.isfinite(threshold) or threshold < 0:
            messages.error(request, "The window holds 1 to 10,000,000 pairs; the threshold is 0 or more.")
            return HttpResponseRedirect(back)
        if request.POST.get("disagreement") == "threshold":
            disagreement, what = Disagreement(threshold=threshold), f"an error over {threshold:g}"
        else:
            disagreement, what = Disagreement(mismatch=True), "a mismatch"
        try:
            names = disagreeing_identifiers(task=found, window=Window(pairs=pairs), disagreement=disagreement)
            done = pointers_flag_names(names=names, user=request.user, detail={"task": found.name})
        except MltraceError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(back)
        messages.success(
            request,
            f"Of the latest {pairs:,} pairs, {len(names):,} show {what}: {done.flagged:,} pointers "
            f"flagged now, {done.already_flagged:,} flagged already, {len(done.not_pointers):,} "
            "identifiers name no pointer. Review ranks the runs behind them.",
        )
        return HttpResponseRedirect(back)

    def monitor_view(self, request: HttpRequest) -> HttpResponse:
        """The tasks by name, TASKS_PAGE at a time (?after=<name>), each with its counts, the
        share of its outputs that have feedback and its series metrics over its latest
        MONITOR_WINDOW_PAIRS pairs: one query for the page's tasks, one for all their metrics."""
        from monitoring.metrics import SERIES_METRICS, from_sums
        from monitoring.selectors import latest_pairs_sums, task_list

        tasks = task_list()
        after = request.GET.get("after", "")
        if after:
            tasks = tasks.filter(name__gt=after)
        page = list(tasks[: TASKS_PAGE + 1])
        more, page = len(page) > TASKS_PAGE, page[:TASKS_PAGE]
        sums = latest_pairs_sums(tasks=[t for t in page if t.pair_count], pairs=MONITOR_WINDOW_PAIRS)
        rows = []
        for task in page:
            row = task_row(task)
            found = sums.get(task.id)
            row["metrics"] = [
                metric_cell(name, from_sums(name, found))
                if found is not None
                else {"name": name, "text": "\u2014", "reason": "no pairs yet", "value": None}
                for name in SERIES_METRICS
            ]
            rows.append(row)
        return self.page(
            request,
            "admin/mltrace/monitor.html",
            "Monitor",
            tasks=rows,
            metrics=SERIES_METRICS,
            window_pairs=MONITOR_WINDOW_PAIRS,
            next_after=page[-1].name if more else None,
        )

    def monitor_task_view(self, request: HttpRequest, task: str) -> HttpResponse:
        """A task's counts, every scalar metric over its latest MONITOR_WINDOW_PAIRS pairs, and
        its series metrics per bucket (GET bucket) over a range back from now (GET range),
        charted with the pairs per bucket; a bounded number of queries whatever the data."""
        from api.serializers.task_reads import MAX_SERIES_BUCKETS
        from monitoring.metrics import SERIES_METRICS, from_sums
        from monitoring.models import Task
        from monitoring.selectors import (
            Window,
            bucket_count,
            latest_pairs_sums,
            task_bucket_sums,
            task_metric,
        )

        found = Task.objects.filter(name=task).first()
        if found is None:
            raise Http404(f"Unknown task: {task}.")
        range_key = request.GET.get("range", DEFAULT_RANGE)
        if range_key not in MONITOR_RANGES:
            range_key = DEFAULT_RANGE
        asked = request.GET.get("bucket", DEFAULT_BUCKET)
        bucket: Bucket = next((b for b in MONITOR_BUCKETS if b == asked), DEFAULT_BUCKET)
        end = timezone.now()
        start = end - MONITOR_RANGES[range_key][1]
        window: list[dict[str, Any]] = []
        if found.pair_count:
            sums = latest_pairs_sums(tasks=[found], pairs=MONITOR_WINDOW_PAIRS).get(found.id)
            if sums is not None:
                window = [metric_cell(name, from_sums(name, sums)) for name in SERIES_METRICS]
                window += [
                    metric_cell(
                        name,
                        task_metric(task=found.name, metric=name, window=Window(pairs=MONITOR_WINDOW_PAIRS)),
                    )
                    for name in WINDOW_ONLY_METRICS
                ]
        chart, error = None, None
        count = bucket_count(bucket=bucket, start=start, end=end)
        if count > MAX_SERIES_BUCKETS:
            error = (
                f"The {MONITOR_RANGES[range_key][0]} holds {count:,} {bucket} buckets; at most "
                f"{MAX_SERIES_BUCKETS:,}: choose a larger bucket or a shorter range."
            )
        elif found.pair_count:
            buckets = task_bucket_sums(task=found, bucket=bucket, start=start, end=end)
            if buckets:
                chart = monitor_chart(buckets, SERIES_METRICS)
                chart.update(start=int(start.timestamp()), end=int(end.timestamp()), bucket=bucket)
        return self.page(
            request,
            "admin/mltrace/monitor_task.html",
            found.name,
            task=task_row(found),
            window=window,
            window_pairs=MONITOR_WINDOW_PAIRS,
            ranges=[(key, label) for key, (label, _) in MONITOR_RANGES.items()],
            range_key=range_key,
            range_label=MONITOR_RANGES[range_key][0],
            buckets=MONITOR_BUCKETS,
            bucket=bucket,
            chart=chart,
            error=error,
        )
