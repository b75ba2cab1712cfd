from django.urls import path

from . import api, views

app_name = "taxonomy"

urlpatterns = [
    path("", views.spec_list_view, name="list"),
    path("<int:spec_id>/", views.spec_detail_view, name="detail"),
    path("<int:spec_id>/v/<int:number>/", views.version_view, name="version"),
    path("<int:spec_id>/v/<int:number>/categories/new/", views.category_form_view, name="category-add"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/edit/", views.category_form_view, name="category-edit"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/delete/", views.category_delete_view, name="category-delete"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/move/", views.category_move_view, name="category-move"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/examples/new/", views.example_form_view, name="example-add"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/examples/<int:index>/edit/", views.example_form_view, name="example-edit"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/examples/<int:index>/delete/", views.example_delete_view, name="example-delete"),
    path("<int:spec_id>/v/<int:number>/categories/<str:key>/examples/<int:index>/move/", views.example_move_view, name="example-move"),
    path("<int:spec_id>/v/<int:number>/<str:section>/edit/", views.lines_form_view, name="lines-edit"),
    path("<int:spec_id>/v/<int:number>/export.<str:fmt>", views.export_view, name="export"),
    path("<int:spec_id>/publish/", views.publish_view, name="publish"),
    path("<int:spec_id>/drafts/", views.draft_create_view, name="draft-create"),
    path("<int:spec_id>/upload/", views.upload_view, name="upload"),
    path("<int:spec_id>/diff/", views.diff_view, name="diff"),
    path("<int:spec_id>/history/", views.history_view, name="history"),
    path("<int:spec_id>/editors/", views.editors_view, name="editors"),
]

api_urlpatterns = [
    path("specs/", api.SpecListCreateApi.as_view(), name="api-spec-list"),
    path("specs/<int:spec_id>/", api.SpecDetailApi.as_view(), name="api-spec-detail"),
    path("specs/<int:spec_id>/publish/", api.SpecPublishApi.as_view(), name="api-spec-publish"),
    path("specs/<int:spec_id>/versions/", api.SpecVersionCreateApi.as_view(), name="api-spec-version-create"),
    path("specs/<int:spec_id>/versions/<int:number>/", api.SpecVersionApi.as_view(), name="api-spec-version"),
    path("specs/<int:spec_id>/versions/<int:number>/export", api.SpecVersionExportApi.as_view(), name="api-spec-export"),
    path("specs/<int:spec_id>/versions/<int:number>/export/", api.SpecVersionExportSlashApi.as_view()),
    path("specs/<int:spec_id>/diff/", api.SpecDiffApi.as_view(), name="api-spec-diff"),
    path("specs/<int:spec_id>/changes/", api.SpecChangesApi.as_view(), name="api-spec-changes"),
    path("specs/<int:spec_id>/editors/", api.SpecEditorsApi.as_view(), name="api-spec-editors"),
]
