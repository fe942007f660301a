# Native API of tools (tools/apis.py).
urlpatterns = []
