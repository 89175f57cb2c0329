// Package serve answers recommendation queries over HTTP from the live
// model of a running job (an ml.Live, kept current by the streaming
// recommend operator). Register mounts two routes on a mux (riffle run
// mounts them on its admin endpoint, 127.0.0.1 unless configured):
//
//	GET /recommend?user=ID&k=N[&fallback=popular]
//	    200 {"user_id", "updates", "interactions", "fallback"?, "recommendations": [{"item_id", "rank", "score"}]}
//	    the user's best k items by x_u·y_i, the user's items left out;
//	    an unknown user is a 404, or with fallback=popular the k items
//	    with the most distinct users ("fallback": "popular", score = users)
//	GET /similar?item=ID&k=N
//	    200 {"item_id", "updates", "interactions", "similar": [{"item_id", "rank", "score"}]}
//	    the k items whose factors have the highest cosine with the
//	    item's, the item itself left out; an unknown item is a 404
//
// Ids are JSON numbers when the model's ids are integers, strings
// otherwise. updates is the number of model updates the serving copy had
// when the answer was computed (every answer is computed on one model
// state, between two updates), interactions the model's distinct
// (user, item) pairs then. A missing or bad id or k (not a positive
// integer, or an id that is not an integer for an integer model) is a
// 400, and before the job has a model the routes answer 503; every error
// is {"error": "..."}.
package serve
