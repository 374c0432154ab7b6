DROP TABLE match_scores;
DROP TABLE match_games;
