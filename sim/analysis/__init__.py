"""Reading results: findings, figures, reports, regression against baselines and theory cases."""
