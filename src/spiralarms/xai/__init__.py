"""Stage `xai` (and `xai_summary`): GradCAM++ and SmoothGrad maps, example choice, plots, and the
share of attribution on the arms."""
