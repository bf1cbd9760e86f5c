from django.shortcuts import render

from . import selectors


def sensors_page(request):
    """Live state and recent readings of the sensors in rooms the member may enter (static/iot/sensors.js)."""
    count = selectors.sensors_visible_to(request.user).count()
    return render(request, "iot/sensors.html", {"sensor_count": count})
