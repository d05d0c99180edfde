"""The bare view of the benchmarks' floor: what any page costs on this stack before it does
any work of its own (the same middleware, login, second factor, session renewal, base
template). Registered only in :mod:`bench.urls`, never in the production URLs."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def floor(request: HttpRequest) -> HttpResponse:
    return render(request, "bench/floor.html")
